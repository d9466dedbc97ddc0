#!/usr/bin/env bash
# Mutation testing of the security-critical modules with cargo-mutants
# (`cargo install cargo-mutants --locked`). Each set is one cargo-mutants run with its own tests:
#
#   unit  src/auth.rs (keys, tenant binding; not the texts and key generation) and
#         src/guard/decision.rs (pass or block), against their unit tests
#   guard the guard's decide/managed and identity refusal (src/guard/gate.rs), against the
#         end-to-end tests of tenant isolation, the guard failing closed and the guard
#   store the SQLite store's managed flag, externalId index and write serialisation
#         (src/store/sqlite.rs), the directory's managed cache, locks and userName check
#         (src/backend/directory.rs), against the end-to-end tests of tenant isolation,
#         uniqueness and the guard
#
# Usage: mutants/run.sh [unit|guard|store|all] [--copy]
#
# cargo-mutants must run --in-place: its own copy of the tree fails building libz-ng-sys (cmake).
# In place it edits src/ while it runs, so the git tree must be clean before and is checked to be
# clean after. With --copy the run happens in a scratch copy of the checkout (target/ included, so
# nothing but the crate is rebuilt) and only the results come back: the checkout stays usable.
# Each set is capped at MUTANTS_MINUTES minutes (default 25); a capped run reports what it did.
# MUTANTS_BASELINE=skip skips the unmutated baseline run (when the tests are known to pass).
# Results: mutants/out/<set>/mutants.out/ (caught.txt, missed.txt, timeout.txt, unviable.txt);
# mutants/summarize.sh turns them into the tables of mutants/results.md.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
set_name=${1:-all}
copy=${2:-}
minutes=${MUTANTS_MINUTES:-25}

args_for() {
    case "$1" in
        unit) echo "--file src/auth.rs --file src/guard/decision.rs --exclude-re AuthFailure::label|AuthFailure::detail|generate_key|key_entry|key_id -- --lib -- auth:: guard::decision::" ;;
        guard) echo "--file src/guard/gate.rs --re Guard::decide|Guard::managed|identity_refusal \
-- --test e2e -- tenants:: fail_closed:: guard::" ;;
        store) echo "--file src/store/sqlite.rs --file src/backend/directory.rs \
--re is_managed|find_by_external_id|serialise|stripe_of|Directory::lock|reserve_user_name|ensure_user_name_free|reports_duplicates|in.Directory::create \
-- --test e2e -- tenants:: uniqueness:: guard:: alt::inactive_create_whose_deactivate_fails_is_undone" ;;
        *) echo "unknown set $1 (unit, guard, store or all)" >&2; exit 2 ;;
    esac
}

run_set() {
    local name=$1 dir=$2
    mkdir -p "$dir/mutants/out/$name"
    # shellcheck disable=SC2046 # the arguments are split on purpose
    (cd "$dir" && timeout --signal=INT "${minutes}m" cargo mutants --in-place --no-shuffle \
        --timeout 300 --build-timeout 600 --baseline "${MUTANTS_BASELINE:-run}" --output "mutants/out/$name" $(args_for "$name")) || true
    if [ "$dir" != "$root" ]; then
        mkdir -p "$root/mutants/out"
        rm -rf "$root/mutants/out/$name"
        cp -r "$dir/mutants/out/$name" "$root/mutants/out/$name"
    fi
}

if [ -z "$copy" ] && [ -n "$(git status --porcelain --untracked-files=no)" ]; then
    echo "the tree has uncommitted changes: commit them, or use --copy" >&2
    exit 1
fi
work=$root
if [ "$copy" = "--copy" ]; then
    work=$(mktemp -d)
    # tar exits 1 when a file changed while it was read (a build running alongside): harmless.
    (tar --exclude=./.git --exclude=./mutants/out -cf - . || [ $? -eq 1 ]) | tar -xf - -C "$work"
fi
sets=$set_name
[ "$set_name" = all ] && sets="unit guard store"
for s in $sets; do
    run_set "$s" "$work"
done
if [ "$work" != "$root" ]; then
    rm -rf "$work"
elif [ -n "$(git status --porcelain --untracked-files=no)" ]; then
    echo "the source tree is not clean after the run: restore it with git checkout" >&2
    exit 1
fi
"$root/mutants/summarize.sh"
