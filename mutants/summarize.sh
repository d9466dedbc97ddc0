#!/usr/bin/env bash
# Prints the outcome of the last mutants/run.sh sets as markdown: counts per set, then every
# mutant that survived (missed) or timed out, for mutants/results.md and mutants/survivors.md.
set -euo pipefail
cd "$(dirname "$0")/out" 2>/dev/null || { echo "no results: run mutants/run.sh first" >&2; exit 1; }
count() { if [ -f "$1" ]; then grep -c . "$1" || true; else echo 0; fi; }
echo "| set | caught | missed | timeout | unviable |"
echo "|---|---|---|---|---|"
for set in */; do
    d="${set%/}/mutants.out"
    echo "| ${set%/} | $(count "$d/caught.txt") | $(count "$d/missed.txt") | $(count "$d/timeout.txt") | $(count "$d/unviable.txt") |"
done
for set in */; do
    d="${set%/}/mutants.out"
    for kind in missed timeout; do
        if [ -s "$d/$kind.txt" ]; then
            echo
            echo "${set%/}, $kind:"
            sed 's/^/- `/; s/$/`/' "$d/$kind.txt"
        fi
    done
done
