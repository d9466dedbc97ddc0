#!/usr/bin/env bash
# Fuzzing smoke run: builds every cargo-fuzz target and fuzzes each for a few seconds from the
# seeds in fuzz/corpus/<target>/. Exits non-zero when a target crashes (the input is saved under
# fuzz/artifacts/<target>/; reproduce with `cargo fuzz run --fuzz-dir fuzz <target> <file>`).
#
#   fuzz/smoke.sh [SECONDS] [TARGET...]     # default: 15 seconds, every target
#
# Works on the stable toolchain: cargo-fuzz needs nightly-only flags (-Zsanitizer), which
# RUSTC_BOOTSTRAP=1 unlocks. Installs cargo-fuzz from crates.io when it is missing.
set -euo pipefail

secs="${1:-15}"
if [ "$#" -gt 0 ]; then shift; fi
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
all=(filter patch canon config body)
if [ "$#" -gt 0 ]; then targets=("$@"); else targets=("${all[@]}"); fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1
cd "$root"
fuzz=(cargo fuzz)
common=(--fuzz-dir "$here" --target-dir "$here/target")

echo "== building ${targets[*]}"
for t in "${targets[@]}"; do
    "${fuzz[@]}" build "${common[@]}" "$t"
done

failed=()
for t in "${targets[@]}"; do
    echo "== fuzzing $t for ${secs}s"
    mkdir -p "$here/corpus/$t" "$here/artifacts/$t"
    if ! "${fuzz[@]}" run "${common[@]}" "$t" -- \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1; then
        failed+=("$t")
    fi
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz smoke: crashes in ${failed[*]} (inputs under fuzz/artifacts/)" >&2
    exit 1
fi
echo "fuzz smoke: ${#targets[@]} targets, ${secs}s each, no crash"
