#!/bin/sh
# The image's entrypoint. `serve` (the default): apply migrations and create the first
# administrator, organisation and registry if missing (under a lock, so replicas starting
# together take turns), then hand the process over to gunicorn. Anything else runs as given.
set -eu
if [ "$#" -eq 0 ] || [ "$1" = "serve" ]; then
  flask bootstrap
  exec gunicorn wsgi:app
fi
exec "$@"
