#!/usr/bin/env bash
# The demo over a PostgreSQL store, as one server for the SCIM conformance run: `scimgate demo`
# serves its built-in legacy service, and `scimgate run` with conf/demo.toml — its store switched
# to a fresh PostgreSQL database — answers SCIM on 127.0.0.1:$PORT in front of it. The database
# is created on the server SCIMGATE_TEST_PG names (password in SCIMGATE_TEST_PG_PASSWORD, as
# .ci/postgres.sh prints them) and dropped when this script stops.
#
# Usage (what .ci/run does):
#   CONFORMANCE_SERVER_CMD='bash .ci/pg-demo-server.sh' SCIMGATE=target/release/scimgate \
#     bash .ci/conformance.sh
# Environment: SCIMGATE, PORT and TOKEN (set by conformance.sh), SCIMGATE_TEST_PG,
# SCIMGATE_TEST_PG_PASSWORD; PATCH_ANSWER (default no_content) sets [groups] patch_answer.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SCIMGATE="${SCIMGATE:-$ROOT/target/release/scimgate}"
: "${SCIMGATE_TEST_PG:?run .ci/postgres.sh first (eval its output)}"
: "${TOKEN:?the SCIM token (conformance.sh sets it)}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/scimgate-pgdemo.XXXXXX")"
DB="scimgate_conformance_$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
export PGPASSWORD="${SCIMGATE_TEST_PG_PASSWORD:-}"

pids=()
stop() {
  kill "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
  psql "$SCIMGATE_TEST_PG" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap stop EXIT
trap 'exit 143' TERM INT

psql "$SCIMGATE_TEST_PG" -qc "CREATE DATABASE $DB" >/dev/null
STORE_URL="${SCIMGATE_TEST_PG%/*}/$DB"

# The legacy service: `scimgate demo` on a port of its own, which prints where the service is.
DEMO_PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
PASSWORD="conformance-$RANDOM$RANDOM"
"$SCIMGATE" demo --listen "127.0.0.1:$DEMO_PORT" --password "$PASSWORD" --data "$WORK/demo" \
  >"$WORK/demo.out" 2>&1 &
pids+=($!)
LEGACY=""
for _ in $(seq 1 300); do
  LEGACY="$(sed -n 's/.*legacy service on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$WORK/demo.out" | head -n1)"
  [ -n "$LEGACY" ] && break
  sleep 0.1
done
[ -n "$LEGACY" ] || { cat "$WORK/demo.out" >&2; echo "the demo printed no legacy port" >&2; exit 1; }

# The gateway's backend credential: the team admin's session on the legacy service.
SESSION="$(python3 - "$LEGACY" "$PASSWORD" <<'EOF'
import json, sys, time, urllib.request
port, password = sys.argv[1], sys.argv[2]
body = json.dumps({"email": "admin@acme.test", "password": password}).encode()
for _ in range(100):
    try:
        req = urllib.request.Request(f"http://127.0.0.1:{port}/api/login", body,
                                     {"Content-Type": "application/json"})
        print(json.load(urllib.request.urlopen(req, timeout=5))["session"])
        break
    except OSError:
        time.sleep(0.1)
else:
    sys.exit("cannot log in to the demo's legacy service")
EOF
)"
export SCIMGATE_DEMO_SERVICE_TOKEN="$SESSION"

# conf/demo.toml with this run's ports, the conformance key and the PostgreSQL store.
python3 - "$ROOT/conf/demo.toml" "$WORK/scimgate.toml" "$PORT" "$LEGACY" "$TOKEN" "$STORE_URL" \
  "${PATCH_ANSWER:-no_content}" <<'EOF'
import hashlib, re, sys
src, out, port, legacy, token, url, patch_answer = sys.argv[1:]
text = open(src).read()
swaps = [
    ('listen = ["127.0.0.1:8080"]', f'listen = ["127.0.0.1:{port}"]'),
    ('address = "127.0.0.1:9090"', f'address = "127.0.0.1:{legacy}"'),
    ('path = "scimgate.sqlite"', f'url = "{url}"\npassword_env = "SCIMGATE_TEST_PG_PASSWORD"'),
    ('backend = "acme"\n', 'backend = "acme"\nkeys = [{ id = "conformance", sha256 = "%s" }]\n'
     % hashlib.sha256(token.encode()).hexdigest()),
    ('patch_answer = "no_content"', f'patch_answer = "{patch_answer}"'),
]
for old, new in swaps:
    if text.count(old) != 1:
        sys.exit(f"conf/demo.toml no longer has exactly one {old!r}")
    text = text.replace(old, new)
open(out, "w").write(text)
EOF
"$SCIMGATE" check --config "$WORK/scimgate.toml" >&2
"$SCIMGATE" run --config "$WORK/scimgate.toml" &
pids+=($!)
wait -n
