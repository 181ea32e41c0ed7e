#!/usr/bin/env bash
# Start the local services this project needs when they are down, and wait until each
# answers: PostgreSQL, Redis, RabbitMQ, and (with --openbao) an OpenBao dev server.
# Idempotent: a service that already answers is left alone. Loopback only.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
state="${STATE_DIR:-$repo/.state}"
venv="${VENV:-$repo/.venv}"
want_openbao=0
[ "${1:-}" = "--openbao" ] && want_openbao=1

log() { printf '[services] %s\n' "$*" >&2; }

wait_until() {  # wait_until SECONDS DESCRIPTION COMMAND...
  local deadline=$(( $(date +%s) + $1 )); local what=$2; shift 2
  until "$@" >/dev/null 2>&1; do
    if [ "$(date +%s)" -ge "$deadline" ]; then log "FAILED: $what did not come up"; return 1; fi
    sleep 0.5
  done
  log "$what is up"
}

pg_up() { pg_isready -h 127.0.0.1 -p 5432 -q; }
if ! pg_up; then
  log "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start || true
fi
wait_until 60 "PostgreSQL" pg_up

redis_up() { [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = "PONG" ]; }
if ! redis_up; then
  log "starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  # Daemons outlive this script: no descriptor above 2 (a caller's lock) goes with them.
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&-
fi
wait_until 30 "Redis" redis_up

rabbit_up() { rabbitmq-diagnostics -q check_port_connectivity; }
if ! rabbit_up; then
  log "starting RabbitMQ"
  rabbitmq-server -detached 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&- || true
fi
wait_until 120 "RabbitMQ" rabbit_up

# The application database (name from DATABASE_URL's default) exists before migrations.
db="${DATABASE_NAME:-integration_service}"
if ! psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1; then
  log "creating database $db"
  psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE \"$db\""
fi

if [ "$want_openbao" = 1 ]; then
  addr="${VAULT_ADDR:-http://127.0.0.1:8200}"
  bao_up() { curl -fsS "$addr/v1/sys/health" >/dev/null; }
  if ! bao_up; then
    mkdir -p "$state/openbao" && chmod 700 "$state/openbao"
    token_file="$state/openbao/root-token"
    # A random dev token per machine, kept out of the repository and readable by us only.
    [ -s "$token_file" ] || (umask 077; python3 -c 'import secrets; print("dev-" + secrets.token_hex(16))' > "$token_file")
    log "starting OpenBao dev server on ${addr#http://}"
    # The token goes by environment, not argv: `ps` shows every process's arguments.
    # Descriptors above 2 are closed: the server outlives this script and must not hold a
    # lock a caller took around it (flock(1) passes its lock descriptor down).
    BAO_DEV_ROOT_TOKEN_ID="$(cat "$token_file")" nohup "$venv/bin/bao" server -dev \
      -dev-listen-address="${addr#http://}" > "$state/openbao/server.log" 2>&1 \
      3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&- &
    echo $! > "$state/openbao/pid"
    wait_until 30 "OpenBao" bao_up
    VAULT_ADDR="$addr" VAULT_TOKEN="$(cat "$token_file")" "$venv/bin/bao" secrets enable transit >/dev/null 2>&1 || true
  else
    log "OpenBao is up"
  fi
fi
