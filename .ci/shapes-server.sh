#!/usr/bin/env bash
# The "shapes" fixture as one server for the SCIM conformance run: its test backend
# (examples/shapes_backend.rs) on 127.0.0.1:19092 and `scimgate run` with
# tests/fixtures/shapes.toml in front of it on 127.0.0.1:$PORT, with a fresh store. Both stop
# when this script is stopped (SIGTERM/SIGINT) or when either of them exits.
#
# Usage (what .ci/run does):
#   CONFORMANCE_SERVER_CMD='bash .ci/shapes-server.sh' SCIMGATE=target/release/scimgate \
#     bash .ci/conformance.sh
# Environment: SCIMGATE (default target/release/scimgate), SHAPES_BACKEND (default
# target/release/examples/shapes_backend), PORT (set by conformance.sh; default 18080).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SCIMGATE="${SCIMGATE:-$ROOT/target/release/scimgate}"
BACKEND="${SHAPES_BACKEND:-$ROOT/target/release/examples/shapes_backend}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/scimgate-shapes.XXXXXX")"

# The store sits next to the config, so a copy of the config gets a fresh store.
sed "s/127\.0\.0\.1:18080/127.0.0.1:${PORT:-18080}/" "$ROOT/tests/fixtures/shapes.toml" >"$WORK/shapes.toml"

pids=()
stop() {
  kill "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap stop EXIT
trap 'exit 143' TERM INT

"$BACKEND" 127.0.0.1:19092 "$WORK" &
pids+=($!)
"$SCIMGATE" run --config "$WORK/shapes.toml" &
pids+=($!)
wait -n
