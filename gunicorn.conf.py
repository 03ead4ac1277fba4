"""How gunicorn serves Cargohold, from CARGOHOLD_* environment variables:
`gunicorn -c gunicorn.conf.py wsgi:app` (scripts/run.sh, the test servers, containers)."""

import os


def _env(name: str, default: str) -> str:
    return os.environ.get(f"CARGOHOLD_{name}", default)


bind = [f"{_env('HOST', '127.0.0.1')}:{_env('PORT', '5000')}"]
# gthread whose event loop reads each request's headers before a thread takes it, with header
# and body timeouts (CARGOHOLD_HEADER_TIMEOUT, CARGOHOLD_BODY_TIMEOUT): see app/http_worker.py.
worker_class = "app.http_worker.HeaderFirstWorker"
workers = int(_env("WORKERS", "2"))
# Requests handled at once per worker; a slow upload holds one thread, never a whole worker.
threads = int(_env("THREADS", "8"))
# Open connections per worker, idle and half-sent ones included.
worker_connections = int(_env("CONNECTIONS", "1000"))
# Seconds an idle kept-alive connection stays open between requests.
keepalive = int(_env("KEEPALIVE", "5"))
# Several servers may run on one host (tests); they must not share one control socket.
control_socket_disable = True
accesslog = _env("ACCESS_LOG", "-") or None
