#!/usr/bin/env bash
# scimgate benchmark, one command: bench/run.sh [--quick] [--no-build] [--quiet-logs] [--users N]
#   bench/run.sh --scale[=1000,20000,100000]: the scale profile only (bench/scale.py)
#
# Builds scimgate (release) and the load generator, installs nginx (Debian) and scim2-server
# (PyPI, into bench/.venv) if missing, then runs bench/bench.py, which starts every server,
# measures, stops them all and writes bench/results/. See bench/README.md.
set -euo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$BENCH")"
QUICK=0
BUILD=1
USERS=0
PASS=()
for arg in "$@"; do
  case "$arg" in
    --quick) QUICK=1; PASS+=("--quick") ;;
    --no-build) BUILD=0 ;;
    --users|--users=*) USERS=1; PASS+=("$arg") ;;
    --scale|--scale=*) USERS=1; PASS+=("$arg") ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) PASS+=("$arg") ;;
  esac
done
# Whole-run limits, a safety net (the measurements take ~1 min quick, ~7 min full; a bigger
# --users makes the Entra cycles longer).
if [ "$QUICK" = 1 ] && [ "$USERS" = 0 ]; then LIMIT=180; else LIMIT=720; fi

say() { printf '[run.sh %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

CHILD=""
cleanup() {
  if [ -n "$CHILD" ] && kill -0 "$CHILD" 2>/dev/null; then
    kill -TERM "$CHILD" 2>/dev/null || true
    sleep 3
    kill -KILL "$CHILD" 2>/dev/null || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- nginx (Debian package; its service is not started: the bench runs its own instance)
NGINX="$(command -v nginx || true)"
[ -z "$NGINX" ] && [ -x /usr/sbin/nginx ] && NGINX=/usr/sbin/nginx
if [ -z "$NGINX" ]; then
  say "installing nginx-light"
  if [ "$(id -u)" != 0 ]; then echo "nginx is missing; install nginx-light (needs root)" >&2; exit 1; fi
  timeout 300 apt-get update -qq
  # RUNLEVEL=1: do not start the system nginx service on install.
  RUNLEVEL=1 DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -qq nginx-light >/dev/null \
    || RUNLEVEL=1 DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -qq nginx >/dev/null
  NGINX=/usr/sbin/nginx
fi

# --- scim2-server (PyPI) in bench/.venv
if [ ! -x "$BENCH/.venv/bin/scim2-server" ]; then
  say "installing scim2-server into bench/.venv"
  timeout 120 python3 -m venv "$BENCH/.venv"
  timeout 300 "$BENCH/.venv/bin/pip" install -q scim2-server
fi

# --- builds
if [ "$BUILD" = 1 ]; then
  say "building scimgate (release)"
  (cd "$ROOT" && timeout 900 cargo build --release --quiet --bin scimgate)
  say "building the load generator"
  (cd "$BENCH/loadgen" && timeout 600 cargo build --release --quiet)
fi
for f in "$ROOT/target/release/scimgate" "$BENCH/loadgen/target/release/scimgate-loadgen"; do
  [ -x "$f" ] || { echo "missing $f (run without --no-build)" >&2; exit 1; }
done

say "load average: $(cut -d' ' -f1-3 /proc/loadavg) (results are ratios within this run; a busy machine still adds noise)"
timeout -k 15 "$LIMIT" "$BENCH/.venv/bin/python" "$BENCH/bench.py" \
  --scimgate "$ROOT/target/release/scimgate" --nginx "$NGINX" "${PASS[@]}" &
CHILD=$!
wait "$CHILD"
