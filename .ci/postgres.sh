#!/usr/bin/env bash
# Brings up a local PostgreSQL for the test suite, on a fresh machine too: installs the Debian
# package if missing, starts the first cluster (creating one if there is none), waits until it
# accepts connections, and creates the test role `scimgate` (LOGIN CREATEDB, password
# `scimgate`) if it does not exist. Needs root. Idempotent.
#
# On stdout it prints the variables the PostgreSQL tests read, ready for `eval`:
#   eval "$(sudo bash .ci/postgres.sh)"
# Everything else goes to stderr.
set -euo pipefail

log() { printf '%s\n' "$*" >&2; }

if ! command -v pg_lsclusters >/dev/null 2>&1; then
  log "installing postgresql"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
fi

cluster=$(pg_lsclusters --no-header | head -n 1)
if [ -z "$cluster" ]; then
  version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
  log "creating cluster $version/main"
  pg_createcluster "$version" main >&2
  cluster=$(pg_lsclusters --no-header | head -n 1)
fi
read -r version name port status _ <<<"$cluster"
if [ "$status" != "online" ]; then
  log "starting cluster $version/$name on port $port"
  pg_ctlcluster "$version" "$name" start >&2
fi

for _ in $(seq 1 60); do
  if pg_isready -q -h 127.0.0.1 -p "$port"; then break; fi
  sleep 0.5
done
pg_isready -h 127.0.0.1 -p "$port" >&2

runuser -u postgres -- psql -p "$port" -qc "DO \$\$BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'scimgate') THEN
    CREATE ROLE scimgate LOGIN CREATEDB PASSWORD 'scimgate';
  END IF;
END\$\$;" >&2
log "PostgreSQL $version/$name is up on 127.0.0.1:$port with role scimgate"

echo "export SCIMGATE_TEST_PG=postgres://scimgate@127.0.0.1:$port/postgres"
echo "export SCIMGATE_TEST_PG_PASSWORD=scimgate"
