#!/usr/bin/env bash
# The team admins' page (issue 20) in a real headless browser: Debian's Chromium driven by
# Selenium (PyPI, pinned) through Debian's chromedriver, against `scimgate demo`.
#
# The flow (.ci/page-test.py): sign in to the demo app as its team admin (POST /api/login), open
# /scim-admin/, paste the session token, Continue -> SCIM "disabled"; Enable -> "enabled";
# Generate -> the new key is shown once, and a real SCIM request with it answers 200; reload ->
# the key is nowhere in the page, its row is listed; Revoke -> the row is gone, and the same
# SCIM request answers 401. Any deviation fails the script (non-zero exit).
#
# Output: a screenshot of each state, kept as a CI artifact, in $PAGE_TEST_OUT (default
# target/page-test): 1-signed-in-disabled.png, 2-enabled.png, 3-key-shown-once.png,
# 4-reloaded-key-not-shown.png, 5-key-revoked.png, plus demo.log (the demo's output) and, on a
# failure, failure.png and failure.html (the page as the browser had it).
#
# Usage: .ci/page-test.sh [PATH_TO_SCIMGATE]   (default target/release/scimgate)
# Environment: PAGE_TEST_OUT (default target/page-test), PAGE_TEST_PORT (default 18082),
# PAGE_TEST_VENV (default .ci/.venv-page).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SCIMGATE="${1:-$ROOT/target/release/scimgate}"
PORT="${PAGE_TEST_PORT:-18082}"
OUT="${PAGE_TEST_OUT:-$ROOT/target/page-test}"
VENV="${PAGE_TEST_VENV:-$ROOT/.ci/.venv-page}"
# selenium and every package it pulls in, pinned. 4.51.0: selenium 4.52.0 and 4.53.0 require
# certifi>=2026.10.23, which the package index (PyPI as this CI sees it) does not offer yet.
PINS=(
  "selenium==4.51.0" "attrs==26.1.0" "certifi==2026.10.19.post1" "h11==0.16.0" "idna==3.21"
  "outcome==1.3.0.post0" "PySocks==1.7.1" "sniffio==1.3.1" "sortedcontainers==2.4.0"
  "trio==0.35.0" "trio-websocket==0.12.2" "typing_extensions==4.16.0" "urllib3==2.8.0"
  "websocket-client==1.9.2" "wsproto==1.3.2"
)

log() { printf '[page-test] %s\n' "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }

[[ -x "$SCIMGATE" ]] || die "no scimgate binary at $SCIMGATE (cargo build --release)"

if ! command -v chromium >/dev/null 2>&1 || [[ ! -x /usr/bin/chromedriver ]]; then
  log "installing Debian's chromium and chromium-driver"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium chromium-driver >/dev/null
fi
log "$(chromium --version 2>/dev/null | head -1); $(/usr/bin/chromedriver --version | head -1)"

if [[ ! -x "$VENV/bin/python" || "$(cat "$VENV/.pins" 2>/dev/null)" != "${PINS[*]}" ]]; then
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input "${PINS[@]}"
  printf '%s' "${PINS[*]}" >"$VENV/.pins"
fi

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port_open "$PORT" && die "127.0.0.1:$PORT is already in use; refusing to test whatever listens there"

rm -rf "$OUT"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
DATA="$(mktemp -d "${TMPDIR:-/tmp}/scimgate-page.XXXXXX")"
PASSWORD="page-test-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"

setsid "$SCIMGATE" demo --listen "127.0.0.1:$PORT" --password "$PASSWORD" --data "$DATA" \
  >"$OUT/demo.log" 2>&1 </dev/null &
SERVER=$!
cleanup() {
  kill -TERM -- "-$SERVER" 2>/dev/null || true
  wait "$SERVER" 2>/dev/null || true
  rm -rf "$DATA"
}
trap cleanup EXIT

for _ in $(seq 1 300); do
  port_open "$PORT" && break
  if ! kill -0 "$SERVER" 2>/dev/null; then
    tail -n 30 "$OUT/demo.log" >&2
    die "the demo exited before listening on 127.0.0.1:$PORT"
  fi
  sleep 0.1
done
port_open "$PORT" || die "the demo did not listen on 127.0.0.1:$PORT within 30 s"

log "driving headless Chromium against http://127.0.0.1:$PORT/scim-admin/ (output in $OUT)"
start=$SECONDS
PAGE_TEST_BASE="http://127.0.0.1:$PORT" PAGE_TEST_EMAIL="admin@acme.test" \
  PAGE_TEST_PASSWORD="$PASSWORD" PAGE_TEST_OUT="$OUT" \
  "$VENV/bin/python" "$ROOT/.ci/page-test.py" ||
  die "the page test failed (screenshots, failure.html and demo.log in $OUT)"
log "OK in $((SECONDS - start)) s: enable, generate (the key shown once), revoke; screenshots in $OUT"
