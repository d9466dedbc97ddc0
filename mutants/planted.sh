#!/usr/bin/env bash
# Plants each bug of mutants/planted/*.patch in turn, runs the end-to-end tests meant to catch it
# and prints a markdown row per plant: the tests must FAIL with the bug in place. The tree is
# restored after each plant (`git apply -R`); it must be clean before.
# Usage: mutants/planted.sh [NAME...]   (default: every patch)
set -uo pipefail
cd "$(dirname "$0")/.."

# The e2e tests (name filters) that catch each plant.
declare -A catchers=(
    [one-tenant]="tenants::"
    [identity-fails-open]="fail_closed::"
    [store-error-not-managed]="fail_closed::a_store"
    [body-deadline-x100]="fail_closed::a_body"
    [no-create-lock]="uniqueness::concurrent"
    [no-gateway-uniqueness-check]="uniqueness::"
    [put-without-active-activates]="alt::put_replaces_the_user"
    [filtered-remove-hits-every-element]="entra::a_filtered_sub_attribute_remove"
    [store-forgets-managed]="tenants::the_managed_flag_outlives_a_restart"
)

if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
    echo "the tree has uncommitted changes; commit them first" >&2
    exit 1
fi
names=("$@")
[ ${#names[@]} -eq 0 ] && names=("${!catchers[@]}")
echo "| planted bug | tests run | result |"
echo "|---|---|---|"
for name in "${names[@]}"; do
    patch="mutants/planted/$name.patch"
    git apply "$patch" || { echo "| $name | - | patch does not apply |"; continue; }
    # shellcheck disable=SC2086 # several filters on purpose
    out=$(cargo test --test e2e -- ${catchers[$name]} 2>&1)
    git apply -R "$patch"
    failed=$(grep -E '^test .* FAILED$' <<<"$out" | sed -E 's/^test (.*) \.\.\. FAILED$/`\1`/' | paste -sd ' ')
    if [ -n "$failed" ]; then
        echo "| $name | ${catchers[$name]} | caught by $failed |"
    elif grep -q "error\[" <<<"$out"; then
        echo "| $name | ${catchers[$name]} | does not compile |"
    else
        echo "| $name | ${catchers[$name]} | **NOT caught** |"
    fi
done
