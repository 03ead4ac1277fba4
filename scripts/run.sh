#!/usr/bin/env bash
# Start Cargohold on the embedded default (SQLite + a local folder) with gunicorn.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGOHOLD_HOST="${CARGOHOLD_HOST:-127.0.0.1}"
export CARGOHOLD_PORT="${CARGOHOLD_PORT:-5000}"
export CARGOHOLD_DATA_DIR="${CARGOHOLD_DATA_DIR:-./data}"
export FLASK_APP=wsgi
VENV="${VENV:-.venv}"

# Migrations run once here, before the workers start, so workers never race on the schema.
"$VENV/bin/flask" bootstrap

user="${CARGOHOLD_ADMIN_USER:-admin}"
org="${CARGOHOLD_BOOTSTRAP_ORG:-acme}"
reg="${CARGOHOLD_BOOTSTRAP_REGISTRY:-main}"
addr="$CARGOHOLD_HOST:$CARGOHOLD_PORT"
if [ -n "${CARGOHOLD_ADMIN_PASSWORD:-}" ]; then
  pw_hint='$CARGOHOLD_ADMIN_PASSWORD'
else
  pw_hint="\$(cat $CARGOHOLD_DATA_DIR/admin-password)"
fi
cat <<MSG

Cargohold is starting at http://$addr
Console:  open http://$addr/ in a browser and sign in as $user
Log in:   podman login --tls-verify=false -u $user -p "$pw_hint" $addr
Push to:  $addr/$org/$reg/<image>:<tag>

MSG
# gthread: a slow upload occupies a thread, not a whole worker, and is never killed by the
# worker timeout.
exec "$VENV/bin/gunicorn" --bind "$addr" --worker-class gthread \
  --workers "${CARGOHOLD_WORKERS:-2}" --threads "${CARGOHOLD_THREADS:-8}" \
  --no-control-socket --access-logfile - wsgi:app
