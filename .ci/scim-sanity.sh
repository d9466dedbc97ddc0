#!/usr/bin/env bash
# scim-sanity's live probe (PyPI scim-sanity, pinned) against the demo with Groups published:
# discovery, the User and Group lifecycles (Group: create, read, replace, PATCH rename, add and
# remove members, delete, 404), search and errors.
#
# The demo runs as .ci/pg-demo-server.sh does (PostgreSQL store), with group PATCH answering
# 200 and the group (`patch_answer = "group"`): the probe demands 200 where scimgate's default
# is the 204 Entra recommends.
#
# One check is known to fail and is accepted, by name, because it contradicts a requirement:
# "PATCH /Groups/{id} add member" adds the member id "fake-member-id", which names no user, and
# demands 200; scimgate answers 400 invalidValue with nothing applied (a member that names no
# user must not be a silent success). scim-sanity's own "entra" profile lists the same answer as
# what Microsoft's SCIM server does ("referential integrity enforced"). Any other failure fails
# this script.
#
# Usage: .ci/scim-sanity.sh [PATH_TO_SCIMGATE]   (default target/release/scimgate)
# Environment: SCIMGATE_TEST_PG and SCIMGATE_TEST_PG_PASSWORD (eval .ci/postgres.sh), SANITY_PORT
# (default 18081), SANITY_VENV (default .ci/.venv-sanity).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export SCIMGATE="${1:-$ROOT/target/release/scimgate}"
export PORT="${SANITY_PORT:-18081}"
VENV="${SANITY_VENV:-$ROOT/.ci/.venv-sanity}"
PINS=("scim-sanity==0.7.4" "click==8.5.1")
export TOKEN="scimgate-sanity-token-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
LOG_DIR="$(mktemp -d "${TMPDIR:-/tmp}/scimgate-sanity.XXXXXX")"
ACCEPTED="PATCH /Groups/{id} add member"

log() { printf '[scim-sanity] %s\n' "$*" >&2; }

if [[ ! -x "$VENV/bin/scim-sanity" || "$(cat "$VENV/.pins" 2>/dev/null)" != "${PINS[*]}" ]]; then
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input "${PINS[@]}"
  printf '%s' "${PINS[*]}" >"$VENV/.pins"
fi

PATCH_ANSWER=group setsid bash "$ROOT/.ci/pg-demo-server.sh" >"$LOG_DIR/server.log" 2>&1 </dev/null &
SERVER=$!
trap 'kill -TERM -- "-$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  kill -0 "$SERVER" 2>/dev/null || { tail -n 30 "$LOG_DIR/server.log" >&2; exit 1; }
  sleep 0.2
done

log "probing http://127.0.0.1:$PORT/scim/v2 (logs in $LOG_DIR)"
set +e
NO_COLOR=1 "$VENV/bin/scim-sanity" probe "http://127.0.0.1:$PORT/scim/v2" --token "$TOKEN" \
  --i-accept-side-effects --user-domain example.com >"$LOG_DIR/probe.log" 2>&1
set -e
cat "$LOG_DIR/probe.log"

grep -q '\[PASS\] DELETE /Groups/{id}' "$LOG_DIR/probe.log" ||
  { log "FAIL: the probe did not complete the Group lifecycle"; exit 1; }
failed="$(grep -E '^\s*\[(FAIL|ERROR)\]' "$LOG_DIR/probe.log" | sed -E 's/^\s*\[(FAIL|ERROR)\] //' || true)"
unexpected="$(printf '%s\n' "$failed" | grep -vxF "$ACCEPTED" | grep -v '^$' || true)"
if [[ -n "$unexpected" ]]; then
  log "FAIL: checks failed:"
  printf '  %s\n' "$unexpected" >&2
  exit 1
fi
log "OK: every check passed but the one accepted above (${ACCEPTED})"
