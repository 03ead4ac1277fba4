"""What any Python application served the way Cargohold is served can reach on this machine: the
floor under every small-request figure of `make bench`.

    python bench/floor.py [--seconds 3] [--reps 3]

Runs gunicorn with Cargohold's own `gunicorn.conf.py` (the same worker class, 2 workers x 8
threads, keep-alive, preloaded) serving applications that do nothing but answer: a bare WSGI
callable and a bare Flask view, each returning a fixed 500-byte manifest with the headers a
manifest GET carries, and a Flask view that also reads what any registry keeping access and
tags in a database must read per request (a policy stamp and the tag's manifest, SQLAlchemy
Core on SQLite in WAL mode, one pooled connection); then Cargohold (as `make bench` runs it) and
Debian's CNCF Distribution answering a real anonymous manifest GET, for the same connections
(wrk, 1, 8 and 32). Where a bare application is below Distribution, no work a manifest GET
does in Python can close the gap: what is left is the server and the interpreter; where the
database view is, no work beyond those two reads can. Prints one JSON line per run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BODY = b"{" + b'"x":' + b'"' + b"a" * 491 + b'"}'
HEADERS = [
    ("Content-Type", "application/vnd.oci.image.manifest.v1+json"),
    ("Docker-Content-Digest", "sha256:" + "0" * 64),
    ("ETag", '"sha256:' + "0" * 64 + '"'),
    ("Docker-Distribution-API-Version", "registry/2.0"),
]

APPS = """
from flask import Flask, Response

BODY = {body!r}
HEADERS = {headers!r}


def wsgi(environ, start_response):
    start_response("200 OK", HEADERS + [("Content-Length", str(len(BODY)))])
    return [BODY]


flask_app = Flask(__name__)


@flask_app.route("/v2/<path:rest>")
def manifest(rest):
    return Response(BODY, headers=dict(HEADERS))


# The least a registry that keeps tags and access in a database does per manifest GET: read the
# policy stamp (access changes take effect at once, on every replica) and the tag's manifest, on
# one pooled connection, through SQLAlchemy Core on SQLite in WAL mode (two reads, as
# Cargohold's are): no ORM, no authorization, no log, no metrics.
import os
import sqlite3
from contextlib import closing

from sqlalchemy import create_engine, text

DB = os.environ["FLOOR_DB"]
# Closed before gunicorn forks the workers: a connection must not cross a fork.
with closing(sqlite3.connect(DB)) as setup, setup:
    setup.execute("PRAGMA journal_mode=WAL")
    setup.execute("CREATE TABLE IF NOT EXISTS stamp (id INTEGER PRIMARY KEY, stamp INTEGER)")
    setup.execute(
        "CREATE TABLE IF NOT EXISTS tags (repo TEXT, name TEXT, digest TEXT, media_type TEXT, "
        "body BLOB, PRIMARY KEY (repo, name))"
    )
    setup.execute("INSERT OR REPLACE INTO stamp VALUES (1, 1)")
    setup.execute(
        "INSERT OR REPLACE INTO tags VALUES ('acme/x', 'latest', ?, ?, ?)",
        (HEADERS[1][1], HEADERS[0][1], BODY),
    )
engine = create_engine("sqlite:///" + DB)
STAMP = text("SELECT stamp FROM stamp WHERE id = 1")
TAG = text("SELECT digest, media_type, body FROM tags WHERE repo = :repo AND name = :name")
db_app = Flask("floor_db")


@db_app.route("/v2/<path:repo>/manifests/<name>")
def db_manifest(repo, name):
    with engine.connect() as conn:
        conn.execute(STAMP).scalar_one()
        digest, media_type, body = conn.execute(TAG, dict(repo=repo, name=name)).one()
        conn.commit()
    headers = dict(HEADERS)
    headers.update([("Content-Type", media_type), ("Docker-Content-Digest", digest)])
    return Response(body, headers=headers)
"""


# Cargohold's settings, less the hook that opens Cargohold's own application in each worker.
CONF = f"""
exec(open({str(ROOT / "gunicorn.conf.py")!r}).read())


def post_fork(server, worker):
    pass
"""


def _gunicorn(folder: Path, name: str, target: str, port: int) -> tuple[str, int]:
    """Start one bare application (stopped by `stop_all`): its manifest URL and its pid."""
    from bench.peers import spawn, wait_http

    (folder / "gunicorn_floor.py").write_text(CONF)
    env = {**os.environ, "PYTHONPATH": f"{folder}:{ROOT}", "CARGOHOLD_PORT": str(port)}
    env["FLOOR_DB"] = str(folder / "floor.db")
    cmd = [sys.executable, "-m", "gunicorn", "-c", str(folder / "gunicorn_floor.py"), target]
    log = folder / f"{name}.log"
    proc = spawn(cmd, log, cwd=ROOT, env=env)
    url = f"http://127.0.0.1:{port}/v2/acme/x/manifests/latest"
    wait_http(url, proc, log)
    return url, proc.pid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from bench.common import RegistryAuth, cpu_seconds
    from bench.load import wrk
    from bench.oci import MANIFEST_TYPE, push_small_image
    from bench.peers import start_cargohold, start_distribution, stop_all
    from tests.support.server import free_port

    folder = Path(tempfile.mkdtemp(prefix="cargohold-floor-"))
    (folder / "floor_apps.py").write_text(APPS.format(body=BODY, headers=HEADERS))
    urls: dict[str, tuple[str, int | tuple[int, ...] | None]] = {}
    try:
        for name, target in (
            ("bare-wsgi", "floor_apps:wsgi"),
            ("bare-flask", "floor_apps:flask_app"),
            ("flask-sqlite", "floor_apps:db_app"),
        ):
            urls[name] = _gunicorn(folder, name, target, free_port())
        import requests

        cargohold, _ = start_cargohold(folder / "cargohold", [])
        pusher = requests.Session()
        pusher.auth = RegistryAuth(cargohold.extra["user"], cargohold.extra["password"])
        push_small_image(pusher, cargohold.url, "acme/public/x", "latest")
        urls["cargohold"] = (f"{cargohold.url}/v2/acme/public/x/manifests/latest", cargohold.pid)
        dist = start_distribution(folder / "distribution")
        push_small_image(requests.Session(), dist.url, "acme/x", "latest")
        urls["distribution"] = (f"{dist.url}/v2/acme/x/manifests/latest", dist.pid)
        accept = {"Accept": MANIFEST_TYPE}
        for rep in range(args.reps):
            for connections in (1, 8, 32):
                for name, (url, pid) in urls.items():
                    cpu = cpu_seconds(pid) if pid else 0.0
                    out = wrk(url, connections, args.seconds, accept)
                    row = {"rep": rep, "system": name, "connections": connections}
                    row.update(rps=round(out.rps, 1), p50_ms=round(out.p50_ms, 3), bad=out.bad)
                    if pid:
                        # Server CPU per answer, whole process tree: steadier than the rate.
                        cpu = cpu_seconds(pid) - cpu
                        row["cpu_ms"] = round(cpu * 1e3 / max(out.requests, 1), 3)
                    print(json.dumps(row), flush=True)
                    time.sleep(0.2)
    finally:
        stop_all()


if __name__ == "__main__":
    main()
