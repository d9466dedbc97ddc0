#!/usr/bin/env bash
# Long soak of scimgate: the real `scimgate run` binary (release build) in front of the demo
# backend, under steady Entra-like provisioning, guarded self-service and proxied traffic.
# Fails on any unexpected answer (any 5xx), or when RSS or open descriptors grow 10% or more
# after warm-up. Results: soak/results/soak-<date>.json and soak-<date>.md.
#
#   soak/run.sh            # 10 minutes
#   soak/run.sh 120        # 2 minutes
#   SCIMGATE_SOAK_RESULTS=/tmp/out soak/run.sh 3600
#
# The same harness runs for 25 s in every `cargo test` (tests/e2e/soak.rs, soak_ci).
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-${SCIMGATE_SOAK_SECS:-600}}"
results="${SCIMGATE_SOAK_RESULTS:-$PWD/soak/results}"
mkdir -p "$results"
echo "soak: ${secs} s, results in ${results} (load: $(cut -d' ' -f1-3 /proc/loadavg))"
SCIMGATE_SOAK_SECS="$secs" SCIMGATE_SOAK_RESULTS="$results" \
  cargo test --release --test e2e -- --ignored --exact soak::soak_long --nocapture
