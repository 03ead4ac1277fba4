#!/usr/bin/env bash
# Start Cargohold on the embedded default (SQLite + a local folder) with gunicorn.
set -euo pipefail
cd "$(dirname "$0")/.."
# The data folder holds password hashes, keys and private blobs: the owner alone reads them.
umask 077
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
Log in:   podman login --tls-verify=false -u $user --password="$pw_hint" $addr
Push to:  $addr/$org/$reg/<image>:<tag>
Clients:  podman (apt-get install podman); helm, oras, crane: make tools, then
          export PATH="${CARGOHOLD_TOOLS:-$HOME/.cache/cargohold/tools}/bin:\$PATH"

MSG
# Workers, threads, timeouts and the address: gunicorn.conf.py, from CARGOHOLD_* variables; the
# application writes the access log itself.
exec "$VENV/bin/gunicorn" -c gunicorn.conf.py wsgi:app
