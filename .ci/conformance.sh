#!/usr/bin/env bash
# SCIM 2.0 conformance run: the public suite scim2-tester, driven by `scim2 test`
# (scim2-cli), against `scimgate demo`.
#
# Usage:
#   .ci/conformance.sh [PATH_TO_SCIMGATE]      # or SCIMGATE=... .ci/conformance.sh
#   .ci/conformance.sh --self-test             # same harness against the reference
#                                              # server scim2-server (Users only)
#
# Environment (all optional):
#   SCIMGATE                      scimgate binary (default: first arg, else
#                                 target/release/scimgate, else target/debug/scimgate)
#   CONFORMANCE_PORT              loopback port (default 18080)
#   CONFORMANCE_TOKEN             bearer token (default: fixed test token below)
#   CONFORMANCE_BASE_PATH         SCIM base path on the server (default /scim/v2)
#   CONFORMANCE_SERVER_CMD        replaces the server start command; run with
#                                 `bash -c "exec $CMD"`, with $PORT, $TOKEN and
#                                 $CONFORMANCE_VENV exported (venv bin is on PATH)
#   CONFORMANCE_VENV              venv location (default .ci/.venv)
#   CONFORMANCE_EXTRA_PIP         extra requirements for the venv, space separated
#                                 (e.g. "scim2-server==0.8.3" for a server override)
#   CONFORMANCE_WAIT_SECS         max wait for the port to open (default 60)
#   CONFORMANCE_ALLOW_SKIPPED=1   do not fail on SKIPPED checks (default: fail,
#                                 exactly like `scim2 test`'s own exit code)
#   CONFORMANCE_LOG_DIR           where the full logs go (default: a mktemp dir)
#
# Exit status: 0 only if every check reported SUCCESS (SKIPPED tolerated with
# CONFORMANCE_ALLOW_SKIPPED=1), at least one check ran, and the Users CRUD
# checks were reached. Prints "conformance: N passed, N failed, N skipped".
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# Pinned: the versions this harness was written and verified against
# (pip freeze of `pip install scim2-cli scim2-tester scim2-server`).
PINS=(
  "scim2-cli==0.6.0"
  "scim2-tester==0.5.2"
  "scim2-client[httpx2]==0.13.2"
  "scim2-models==0.12.3"
  "httpx2==2.16.2"
  "httpcore2==2.16.2"
  "pydantic==2.14.4"
  "pydantic_core==2.50.5"
  "click==8.5.1"
  "pydanclick==0.5.1"
  "sphinx-click-rst-to-ansi-formatter==0.2.0"
  "docutils==0.23"
  "Pygments==2.21.0"
  "anyio==4.16.0"
  "h11==0.16.0"
  "idna==3.20"
  "truststore==0.10.5"
  "lark==1.3.1"
  "email-validator==2.4.0"
  "dnspython==2.9.2"
  "annotated-types==0.8.0"
  "typing-inspection==0.4.5"
  "typing_extensions==4.16.0"
  "colorama==0.4.6"
)
SELFTEST_PINS=("scim2-server==0.8.3")

SELF_TEST=0
if [[ "${1:-}" == "--self-test" ]]; then
  SELF_TEST=1
  shift
fi

PORT="${CONFORMANCE_PORT:-18080}"
TOKEN="${CONFORMANCE_TOKEN:-scimgate-conformance-token-0123456789}"
BASE_PATH="${CONFORMANCE_BASE_PATH:-/scim/v2}"
WAIT_SECS="${CONFORMANCE_WAIT_SECS:-60}"
ALLOW_SKIPPED="${CONFORMANCE_ALLOW_SKIPPED:-0}"
CONFORMANCE_VENV="${CONFORMANCE_VENV:-$ROOT/.ci/.venv}"
LOG_DIR="${CONFORMANCE_LOG_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/scimgate-conformance.XXXXXX")}"
mkdir -p "$LOG_DIR"
SERVER_LOG="$LOG_DIR/server.log"
TEST_LOG="$LOG_DIR/scim2-test.log"

log() { printf '[conformance] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------- python venv
find_python() {
  local c
  for c in python3.13 python3.12 python3.11 python3; do
    if command -v "$c" >/dev/null 2>&1 &&
       "$c" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
      command -v "$c"; return 0
    fi
  done
  return 1
}

setup_venv() {
  local want=("${PINS[@]}") stamp py
  if [[ $SELF_TEST == 1 ]]; then want+=("${SELFTEST_PINS[@]}"); fi
  if [[ -n "${CONFORMANCE_EXTRA_PIP:-}" ]]; then
    local extra; read -ra extra <<<"$CONFORMANCE_EXTRA_PIP"; want+=("${extra[@]}")
  fi
  stamp="$CONFORMANCE_VENV/.conformance-pins"
  if [[ -x "$CONFORMANCE_VENV/bin/scim2" && -f "$stamp" ]] &&
     [[ "$(cat "$stamp")" == "${want[*]}" ]]; then
    log "reusing venv $CONFORMANCE_VENV"
    return 0
  fi
  py="$(find_python)" || die "need Python >= 3.11 (scim2-cli/scim2-tester require it)"
  log "creating venv $CONFORMANCE_VENV with $py"
  rm -rf "$CONFORMANCE_VENV"
  "$py" -m venv "$CONFORMANCE_VENV" || die "python -m venv failed (Debian: apt-get install python3-venv)"
  "$CONFORMANCE_VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
      --no-input "${want[@]}" || die "pip install failed"
  printf '%s' "${want[*]}" >"$stamp"
}

# ---------------------------------------------------------------- server
SERVER_PID=""
cleanup() {
  local rc=$?
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

selftest_server_cmd() {
  # Reference server configured like the scimgate demo: Users only (core User
  # schema, no enterprise extension), no Groups, PATCH on, bulk/filter/sort/etag off.
  local cfg="$LOG_DIR/selftest"
  mkdir -p "$cfg"
  "$CONFORMANCE_VENV/bin/python" - "$cfg" <<'PY'
import json, sys, pathlib
import scim2_server
res = pathlib.Path(scim2_server.__file__).parent / "resources"
out = pathlib.Path(sys.argv[1])
rts = [rt for rt in json.loads((res / "default-resource-types.json").read_text()) if rt["id"] == "User"]
for rt in rts:
    rt.pop("schemaExtensions", None)
schemas = [s for s in json.loads((res / "default-schemas.json").read_text())
           if s["id"] == "urn:ietf:params:scim:schemas:core:2.0:User"]
spc = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
    "patch": {"supported": True},
    "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
    "filter": {"supported": False, "maxResults": 1000},
    "changePassword": {"supported": False},
    "sort": {"supported": False},
    "etag": {"supported": False},
}
(out / "resource-types.json").write_text(json.dumps(rts))
(out / "schemas.json").write_text(json.dumps(schemas))
(out / "spc.json").write_text(json.dumps(spc))
PY
  printf 'scim2-server --hostname 127.0.0.1 --port "$PORT" --bearer-token "$TOKEN" --resource-type %q --schema %q --service-provider-config %q' \
    "$cfg/resource-types.json" "$cfg/schemas.json" "$cfg/spc.json"
}

start_server() {
  local cmd
  if [[ -n "${CONFORMANCE_SERVER_CMD:-}" ]]; then
    cmd="$CONFORMANCE_SERVER_CMD"
  elif [[ $SELF_TEST == 1 ]]; then
    cmd="$(selftest_server_cmd)"
    BASE_PATH="${CONFORMANCE_BASE_PATH:-/v2}"   # scim2-server serves SCIM under /v2
  else
    local bin="${1:-${SCIMGATE:-}}"
    if [[ -z "$bin" ]]; then
      for cand in "$ROOT/target/release/scimgate" "$ROOT/target/debug/scimgate"; do
        [[ -x "$cand" ]] && { bin="$cand"; break; }
      done
    fi
    [[ -n "$bin" ]] || die "no scimgate binary: pass its path, set SCIMGATE, or build target/{release,debug}/scimgate"
    [[ -x "$bin" ]] || die "scimgate binary not executable: $bin"
    SCIMGATE="$bin"
    cmd='"$SCIMGATE" demo --listen "127.0.0.1:$PORT" --token "$TOKEN"'
  fi

  if port_open "$PORT"; then
    die "127.0.0.1:$PORT is already in use; refusing to test whatever listens there"
  fi

  log "starting server: $cmd"
  PORT="$PORT" TOKEN="$TOKEN" SCIMGATE="${SCIMGATE:-}" CONFORMANCE_VENV="$CONFORMANCE_VENV" \
    PATH="$CONFORMANCE_VENV/bin:$PATH" \
    bash -c "exec $cmd" >"$SERVER_LOG" 2>&1 </dev/null &
  SERVER_PID=$!

  local deadline=$((SECONDS + WAIT_SECS))
  until port_open "$PORT"; do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      local src=0
      wait "$SERVER_PID" 2>/dev/null || src=$?
      log "server exited (status $src) before listening on 127.0.0.1:$PORT; its log:"
      tail -n 50 "$SERVER_LOG" >&2 || true
      SERVER_PID=""
      exit 1
    fi
    if ((SECONDS >= deadline)); then
      log "server did not open 127.0.0.1:$PORT within ${WAIT_SECS}s; its log:"
      tail -n 50 "$SERVER_LOG" >&2 || true
      exit 1
    fi
    sleep 0.2
  done
  log "server listening on 127.0.0.1:$PORT (pid $SERVER_PID)"
}

# ---------------------------------------------------------------- run
setup_venv
start_server "${1:-}"

BASE_URL="http://127.0.0.1:${PORT}${BASE_PATH}"
log "running: scim2 --url $BASE_URL test -v  (Authorization header via SCIM_CLI_HEADERS)"
set +e
# The token goes through the environment, not argv (scim2-cli's own advice).
# NO_COLOR/non-tty: click strips the ANSI styling when stdout is not a terminal.
SCIM_CLI_HEADERS="Authorization: Bearer ${TOKEN}" NO_COLOR=1 \
  "$CONFORMANCE_VENV/bin/scim2" --url "$BASE_URL" test --verbose >"$TEST_LOG" 2>&1
CLI_RC=$?
set -e

# Output format of `scim2 test` (scim2_cli/test.py): one line "STATUS check_name"
# per result, then the reason and (with -v) the data, indented by two spaces.
STATUS_RE='^(SUCCESS|COMPLIANT|ACCEPTABLE|DEVIATION|ERROR|CRITICAL|SKIPPED) [A-Za-z0-9_]+$'
CLEAN_LOG="$LOG_DIR/scim2-test.clean.log"
sed -e 's/\x1b\[[0-9;]*m//g' "$TEST_LOG" >"$CLEAN_LOG"

count() { grep -cE "^$1 [A-Za-z0-9_]+\$" "$CLEAN_LOG" || true; }
N_SUCCESS=$(count SUCCESS)
N_SKIPPED=$(count SKIPPED)
N_TOTAL=$(grep -cE "$STATUS_RE" "$CLEAN_LOG" || true)
N_OTHER=$((N_TOTAL - N_SUCCESS - N_SKIPPED))

# Per-check table.
echo "== scim2-tester results against $BASE_URL =="
grep -E "$STATUS_RE" "$CLEAN_LOG" | awk '{c[$2" "$1]++} END {for (k in c) {split(k,a," "); printf "  %-8s x%-3d %s\n", a[2], c[k], a[1]}}' | sort -b -k3,3 || true

# Details (reason + data, truncated) of every result that is not SUCCESS.
if ((N_TOTAL - N_SUCCESS > 0)); then
  echo "== non-SUCCESS results (full log: $TEST_LOG) =="
  awk -v re="$STATUS_RE" '
    $0 ~ re { show = ($1 != "SUCCESS"); if (show) print; next }
    show { print (length($0) > 1500 ? substr($0, 1, 1500) " ...[truncated]" : $0) }
  ' "$CLEAN_LOG"
fi

# SKIPPED counts as a failure unless CONFORMANCE_ALLOW_SKIPPED=1: `scim2 test`
# itself exits 1 on anything but SUCCESS (scim2_cli/test.py).
FAILED=$N_OTHER
SHOWN_SKIPPED=$N_SKIPPED
if [[ "$ALLOW_SKIPPED" != 1 ]]; then FAILED=$((FAILED + N_SKIPPED)); SHOWN_SKIPPED=0; fi

REASONS=()
((N_TOTAL > 0)) || REASONS+=("no check result was printed (discovery failed or the CLI crashed)")
((FAILED == 0)) || REASONS+=("$FAILED check(s) not SUCCESS (SKIPPED: $N_SKIPPED, allowed: $ALLOW_SKIPPED)")
grep -qE '^SUCCESS object_creation$' "$CLEAN_LOG" ||
  REASONS+=("the Users CRUD checks were not reached or failed (no 'SUCCESS object_creation')")
if ((CLI_RC != 0)) && ! { ((N_OTHER == 0)) && ((N_SKIPPED > 0)) && [[ "$ALLOW_SKIPPED" == 1 ]]; }; then
  REASONS+=("scim2 test exited $CLI_RC")
fi

# A run that failed before any check (e.g. discovery) still counts as one failure.
if ((${#REASONS[@]} > 0)) && ((FAILED == 0)); then FAILED=1; fi

if ((${#REASONS[@]} > 0)); then
  echo "== scim2 test output (last 40 lines) =="
  tail -n 40 "$CLEAN_LOG" | cut -c1-1500
  echo "== server log (last 40 lines: $SERVER_LOG) =="
  tail -n 40 "$SERVER_LOG" | cut -c1-1500 || true
fi

echo "scim2 test exit code: $CLI_RC; logs in $LOG_DIR"
echo "conformance: ${N_SUCCESS} passed, ${FAILED} failed, ${SHOWN_SKIPPED} skipped"
if ((${#REASONS[@]} > 0)); then
  for r in "${REASONS[@]}"; do log "FAIL: $r"; done
  exit 1
fi
log "OK: ${N_SUCCESS} checks passed, ${N_SKIPPED} skipped (of ${N_TOTAL})"
exit 0
