"""How gunicorn serves Cargohold, from CARGOHOLD_* environment variables:
`gunicorn -c gunicorn.conf.py wsgi:app` (scripts/run.sh, the test servers, containers)."""

from __future__ import annotations

import glob
import os
import shutil
import tempfile


def _env(name: str, default: str) -> str:
    return os.environ.get(f"CARGOHOLD_{name}", default)


bind = [f"{_env('HOST', '127.0.0.1')}:{_env('PORT', '5000')}"]
# gthread whose event loop reads each request's headers before a thread takes it, with header
# and body timeouts (CARGOHOLD_HEADER_TIMEOUT, CARGOHOLD_BODY_TIMEOUT): see app/http_worker.py.
worker_class = "app.http_worker.HeaderFirstWorker"
workers = int(_env("WORKERS", "2"))
# Requests handled at once per worker; a slow upload holds one thread, never a whole worker.
threads = int(_env("THREADS", "8"))
# The master imports the application once and forks the workers from it: the code, the
# modules and the application object are pages the workers share copy-on-write instead of one
# copy each (see post_fork and when_ready for what must not be shared). Code changes then need a
# restart, not a HUP.
preload_app = True
# Open connections per worker, idle and half-sent ones included.
worker_connections = int(_env("CONNECTIONS", "1000"))
# Seconds an idle kept-alive connection stays open between requests.
keepalive = int(_env("KEEPALIVE", "5"))
# Several servers may run on one host (tests); they must not share one control socket.
control_socket_disable = True
# The application writes the access log itself (app/ops/access.py): it knows the route, the
# caller and the bytes sendfile sent, which gunicorn's own access log reports as 0.
accesslog = None
# Forwarded headers are trusted only through CARGOHOLD_TRUSTED_PROXIES, never by address.
forwarded_allow_ips = ""


def _return_large_allocations_to_the_system() -> None:
    """glibc serves a freed block of up to 32 MiB again from the heap it came from, and keeps
    it resident: after a burst of password verifications (argon2 asks for 19 MiB each) every
    thread's arena would hold one. A fixed threshold maps every allocation of 1 MiB or more
    on its own and unmaps it when freed. Set in the master; the workers it forks inherit it."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(-3, 1024 * 1024)  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        pass  # not glibc: nothing to tune


_return_large_allocations_to_the_system()

# Metrics from every worker meet in one folder of files (prometheus_client's multiprocess
# mode). It must be set before any worker imports prometheus_client, so here, at load time.
_made_metrics_dir = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _made_metrics_dir:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="cargohold-metrics-")
os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)


def on_starting(server) -> None:
    # Counters left by a previous run would be added to this one's.
    for path in glob.glob(os.path.join(os.environ["PROMETHEUS_MULTIPROC_DIR"], "*.db")):
        os.unlink(path)


def when_ready(server) -> None:
    # Objects alive now (the whole imported application) move out of the collector's reach:
    # a collection in a worker would otherwise write to every object's header and copy the
    # page it sits on.
    import gc

    gc.collect()
    gc.freeze()


def post_fork(server, worker) -> None:
    # A pooled database connection must never be shared between processes: each worker starts
    # with an empty pool of its own (SQLAlchemy's advice for forked processes).
    import wsgi
    from app.models import db

    with wsgi.app.app_context():
        for engine in db.engines.values():
            engine.dispose(close=False)


def child_exit(server, worker) -> None:
    # A dead worker's live gauges (requests in flight) must stop counting.
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:
    if _made_metrics_dir:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
