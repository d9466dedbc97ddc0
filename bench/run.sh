#!/usr/bin/env bash
# scimgate benchmark, one command: bench/run.sh [--quick] [--no-build] [--quiet-logs] [--users N]
#   bench/run.sh --scale[=1000,10000,20000,100000]: the scale profile only (bench/scale.py)
#
# Builds scimgate (release) and the load generator, installs nginx (Debian) and scim2-server
# (PyPI, into bench/.venv) if missing, makes sure PostgreSQL is up for scenario 6 (starting it
# with .ci/postgres.sh when root; otherwise S6 is skipped), then runs bench/bench.py, which
# starts every server, measures, stops them all and writes bench/results/. See bench/README.md.
#
# S6's PostgreSQL: by default a throwaway cluster of its own with its data on /dev/shm (tmpfs, as
# S6's SQLite file), made with the machine's initdb and removed at exit. --pg-disk, or setting
# SCIMGATE_BENCH_PG (postgres://USER@HOST:PORT/DB, a role with CREATEDB; password in
# SCIMGATE_BENCH_PG_PASSWORD, default scimgate), uses that server as it is instead (default
# postgres://scimgate@127.0.0.1:5432/postgres, the role .ci/postgres.sh makes).
set -euo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$BENCH")"
QUICK=0
BUILD=1
PG_DISK=0
[ -n "${SCIMGATE_BENCH_PG:-}" ] && PG_DISK=1
USERS=0
ONLY=""
PASS=()
prev=""
for arg in "$@"; do
  [ "$prev" = "--only" ] && ONLY="$arg"
  prev="$arg"
  case "$arg" in
    --only=*) ONLY="${arg#--only=}"; PASS+=("$arg") ;;
    --quick) QUICK=1; PASS+=("--quick") ;;
    --no-build) BUILD=0 ;;
    --pg-disk) PG_DISK=1 ;;
    --users|--users=*) USERS=1; PASS+=("$arg") ;;
    --scale|--scale=*) USERS=1; PASS+=("$arg") ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) PASS+=("$arg") ;;
  esac
done
# Whole-run limits, a safety net (the measurements take ~2 min quick, ~9 min full; a bigger
# --users makes the Entra cycles longer).
if [ "$QUICK" = 1 ] && [ "$USERS" = 0 ]; then LIMIT=300; else LIMIT=900; fi

say() { printf '[run.sh %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

CHILD=""
PG_DB=""
PG_TMPFS=""      # the throwaway cluster's folder, when the run made one
PG_BIN=""
pg_psql() { # pg_psql DB SQL: as the bench role
  PGPASSWORD="$SCIMGATE_BENCH_PG_PASSWORD" timeout 30 psql -X -q -A -t -v ON_ERROR_STOP=1 \
    -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d "$1" -c "$2"
}
cleanup() {
  if [ -n "$CHILD" ] && kill -0 "$CHILD" 2>/dev/null; then
    kill -TERM "$CHILD" 2>/dev/null || true
    sleep 3
    kill -KILL "$CHILD" 2>/dev/null || true
  fi
  # bench.py drops S6's database itself; this is the net for a run killed before it could.
  if [ -n "$PG_DB" ]; then
    pg_psql "$PG_MAINT" "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1 || true
  fi
  if [ -n "$PG_TMPFS" ]; then
    as_pg "$PG_BIN/pg_ctl" -D "$PG_TMPFS/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$PG_TMPFS"
  fi
}
as_pg() { # as_pg CMD...: as the postgres user when root (initdb and the server refuse root)
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
# A cluster of the run's own on tmpfs: trust on 127.0.0.1 only, a free port, role scimgate.
start_tmpfs_pg() {
  PG_BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
  [ -x "$PG_BIN/initdb" ] && [ -w /dev/shm ] || return 1
  PG_TMPFS="$(mktemp -d /dev/shm/scimgate-bench-pg.XXXXXX)"
  [ "$(id -u)" = 0 ] && chown postgres "$PG_TMPFS"
  local port super
  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  super="$(as_pg id -un)"
  as_pg "$PG_BIN/initdb" -D "$PG_TMPFS/data" -A trust -U "$super" >/dev/null || return 1
  as_pg "$PG_BIN/pg_ctl" -D "$PG_TMPFS/data" -l "$PG_TMPFS/log" -w -t 60 start \
    -o "-p $port -k $PG_TMPFS -c listen_addresses=127.0.0.1" >/dev/null || return 1
  timeout 30 psql -X -q -h 127.0.0.1 -p "$port" -U "$super" -d postgres \
    -c "CREATE ROLE scimgate LOGIN CREATEDB PASSWORD 'scimgate'" >/dev/null || return 1
  SCIMGATE_BENCH_PG="postgres://scimgate@127.0.0.1:$port/postgres"
  SCIMGATE_BENCH_PG_PASSWORD=scimgate
  PG_WHERE="a throwaway cluster of this run with its data on /dev/shm (tmpfs), as the SQLite file"
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

# --- PostgreSQL for S6: a tmpfs cluster of the run's own, or (--pg-disk) the machine's server,
# which .ci/postgres.sh installs and starts as root
PG_WHERE="the server at ${SCIMGATE_BENCH_PG:-postgres://scimgate@127.0.0.1:5432/postgres}, its data where it keeps it"
if [ "$PG_DISK" = 0 ] && { [ -z "$ONLY" ] || [[ ",$ONLY," == *",s6,"* ]]; }; then
  if [ "$(id -u)" = 0 ] && ! [ -x "$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)/initdb" ]; then
    timeout 600 bash "$ROOT/.ci/postgres.sh" >/dev/null || true
  fi
  if start_tmpfs_pg; then
    say "S6: PostgreSQL on tmpfs at $SCIMGATE_BENCH_PG"
  else
    say "S6: could not start a PostgreSQL cluster on tmpfs; using the machine's server"
  fi
fi
export SCIMGATE_BENCH_PG="${SCIMGATE_BENCH_PG:-postgres://scimgate@127.0.0.1:5432/postgres}"
export SCIMGATE_BENCH_PG_PASSWORD="${SCIMGATE_BENCH_PG_PASSWORD:-scimgate}"
PG_RE='^postgres(ql)?://([^@/:]+)@([^:/]+):([0-9]+)/([A-Za-z0-9_]+)$'
if ! [[ "$SCIMGATE_BENCH_PG" =~ $PG_RE ]]; then
  echo "SCIMGATE_BENCH_PG must look like postgres://USER@HOST:PORT/DB (password in SCIMGATE_BENCH_PG_PASSWORD)" >&2
  exit 1
fi
PG_USER="${BASH_REMATCH[2]}" PG_HOST="${BASH_REMATCH[3]}" PG_PORT="${BASH_REMATCH[4]}" PG_MAINT="${BASH_REMATCH[5]}"
PG_SKIP=""
if [ -n "$ONLY" ] && [[ ",$ONLY," != *",s6,"* ]]; then
  PG_SKIP="not selected"
elif ! command -v psql >/dev/null 2>&1 || ! pg_isready -q -h "$PG_HOST" -p "$PG_PORT" 2>/dev/null \
    || ! pg_psql "$PG_MAINT" "SELECT 1" >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && [ "$PG_HOST" = 127.0.0.1 ]; then
    say "PostgreSQL is not ready on $PG_HOST:$PG_PORT for $PG_USER: running .ci/postgres.sh"
    timeout 600 bash "$ROOT/.ci/postgres.sh" >/dev/null || true
  fi
  if ! command -v psql >/dev/null 2>&1; then
    PG_SKIP="psql is missing (install postgresql, or run bench/run.sh as root to have .ci/postgres.sh do it)"
  elif ! pg_isready -q -h "$PG_HOST" -p "$PG_PORT"; then
    PG_SKIP="PostgreSQL is not running on $PG_HOST:$PG_PORT (start it: sudo bash .ci/postgres.sh)"
  elif ! pg_psql "$PG_MAINT" "SELECT 1" >/dev/null 2>&1; then
    PG_SKIP="cannot log in to PostgreSQL on $PG_HOST:$PG_PORT as $PG_USER (sudo bash .ci/postgres.sh creates the role)"
  fi
fi
if [ -z "$PG_SKIP" ]; then
  PG_DB="scimgate_bench_$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')"
  PASS+=("--pg" "$SCIMGATE_BENCH_PG" "--pg-db" "$PG_DB" "--pg-where" "$PG_WHERE")
elif [ "$PG_SKIP" != "not selected" ]; then
  say "S6 (PostgreSQL store) will be SKIPPED: $PG_SKIP"
  PASS+=("--pg-skip" "$PG_SKIP")
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
