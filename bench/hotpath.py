"""The manifest hot paths of Cargohold alone, for profiling and before/after comparisons of a
change: manifest GET and HEAD by tag, anonymous and with a bearer token, and manifest PUTs under
new tags, on one server set up as `make bench` sets it up (bench/peers.py).

    python bench/hotpath.py [--root CHECKOUT] [--seconds 3] [--reps 3] [--profile DIR]

`--root` serves another checkout of Cargohold (the same script measures the code before and
after a change, run after run); `--profile` records a py-spy flame graph of the workers for each
measure. Prints one JSON line per run: the measure, requests per second and p50 latency.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", type=Path, default=HERE, help="checkout to serve")
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--reps", type=int, default=1)
    parser.add_argument("--puts", type=int, default=800, help="manifest PUTs per run")
    parser.add_argument("--only", nargs="*", default=None, help="measures to run")
    parser.add_argument("--profile", type=Path, default=None, help="py-spy output folder")
    parser.add_argument("--label", default="")
    parser.add_argument(
        "--inprocess",
        type=int,
        default=0,
        help="also serve N requests of each kind in this process (Flask's test client) and "
        "report CPU time and SQL statements per request: steady on a loaded machine",
    )
    args = parser.parse_args()
    sys.path.insert(0, str(args.root.resolve()))

    import requests

    from bench.common import (
        CACHE,
        RegistryAuth,
        cargohold_token,
        cpu_seconds,
        process_tree,
        rss_bytes,
    )
    from bench.load import hey, wrk
    from bench.oci import MANIFEST_TYPE, push_small_image, put_manifest
    from bench.peers import start_cargohold, stop_all
    from tests.support.server import child_pids

    work = Path(tempfile.mkdtemp(prefix="cargohold-hotpath-"))
    service, _server = start_cargohold(work, ["hot"])
    try:
        auth = (service.extra["user"], service.extra["password"])
        s = requests.Session()
        s.auth = RegistryAuth(*auth)
        repo = "acme/hot/manifest"
        manifest, _ = push_small_image(s, service.url, repo, "latest")
        url = f"{service.url}/v2/{repo}/manifests/latest"
        token = cargohold_token(service.url, auth, [f"repository:{repo}:pull"])
        accept = {"Accept": MANIFEST_TYPE}
        bearer = {**accept, "Authorization": f"Bearer {token}"}
        counter = iter(range(10**9))

        def put_tags() -> tuple[float, float]:
            names = [f"t{next(counter):07d}" for _ in range(args.puts)]
            start = time.perf_counter()
            with ThreadPoolExecutor(16) as pool:
                list(pool.map(lambda t: put_manifest(s, service.url, repo, t, manifest), names))
            rate = args.puts / (time.perf_counter() - start)
            return rate, float("nan"), args.puts

        measures = {
            "get_anon_c1": lambda: wrk(url, 1, args.seconds, accept),
            "get_anon_c8": lambda: wrk(url, 8, args.seconds, accept),
            "get_bearer_c1": lambda: wrk(url, 1, args.seconds, bearer),
            "get_bearer_c8": lambda: wrk(url, 8, args.seconds, bearer),
            "head_anon_c8": lambda: hey(url, 8, args.seconds, accept, "HEAD"),
            "head_bearer_c8": lambda: hey(url, 8, args.seconds, bearer, "HEAD"),
            "put_new_tag_c16": put_tags,
        }
        if args.inprocess:
            push = cargohold_token(service.url, auth, [f"repository:{repo}:pull,push"])
            pusher = {"Authorization": f"Bearer {push}"}
            inprocess(_server, url, manifest, bearer, pusher, accept, args.inprocess, args.label)
        tree = process_tree(service.pid)
        idle = sum(rss_bytes(p) for p in tree) / 2**20
        print(json.dumps({"label": args.label, "measure": "idle_rss_mib", "value": round(idle, 1)}))
        for rep in range(args.reps):
            for name, run in measures.items():
                if args.only and name not in args.only:
                    continue
                spies = []
                if args.profile:
                    args.profile.mkdir(parents=True, exist_ok=True)
                    for i, pid in enumerate(child_pids(service.pid)):
                        out_file = args.profile / f"{args.label}{name}.{i}.txt"
                        spies.append(
                            subprocess.Popen(
                                [str(CACHE / "tools/bin/py-spy"), "record", "--nonblocking"]
                                + ["-r", "250", f"--pid={pid}", "-f", "raw", "-o", str(out_file)],
                                stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL,
                            )
                        )
                    time.sleep(0.5)
                cpu_before = cpu_seconds(service.pid)
                out = run()
                cpu = cpu_seconds(service.pid) - cpu_before
                for spy in spies:
                    spy.send_signal(signal.SIGINT)
                    spy.wait()
                rps, p50, done = (out.rps, out.p50_ms, out.requests) if hasattr(out, "rps") else out
                bad = getattr(out, "bad", 0)
                row = {"label": args.label, "rep": rep, "measure": name, "rps": round(rps, 1)}
                # Server CPU per request (whole process tree): steadier than requests per
                # second on a machine others load too.
                row.update(p50_ms=round(p50, 2), bad=bad, cpu_ms=round(cpu * 1e3 / done, 3))
                print(json.dumps(row), flush=True)
    finally:
        stop_all()


def inprocess(server, url, manifest: bytes, bearer, pusher, accept, n: int, label: str) -> None:
    """CPU seconds of this process and SQL statements per request, through the whole app (gate,
    handler, unit of work) but no sockets: the per-request work itself."""
    import os

    from sqlalchemy import event

    from app import create_app
    from app.config import Settings
    from app.models import db

    os.environ.update(server.env)
    app = create_app(Settings.from_env())
    client = app.test_client()
    path = url.split("127.0.0.1", 1)[1].split("/", 1)[1]
    path = "/" + path
    statements = [0]
    with app.app_context():
        event.listen(
            db.engine,
            "before_cursor_execute",
            lambda *a: statements.__setitem__(0, statements[0] + 1),
        )
    put_headers = {**pusher, "Content-Type": accept["Accept"]}
    counter = iter(range(10**9))
    cases = {
        "get_anon": lambda: client.get(path, headers=accept),
        "get_bearer": lambda: client.get(path, headers=bearer),
        "head_bearer": lambda: client.head(path, headers=bearer),
        "put_new_tag": lambda: client.put(
            path.rsplit("/", 1)[0] + f"/n{next(counter):07d}", data=manifest, headers=put_headers
        ),
    }
    for name, call in cases.items():
        count = n if not name.startswith("put") else max(n // 5, 1)
        assert call().status_code in (200, 201), name
        statements[0] = 0
        start = time.process_time()
        for _ in range(count):
            call()
        cpu = time.process_time() - start
        row = {"label": label, "measure": f"inprocess_{name}", "n": count}
        row.update(cpu_ms=round(cpu * 1e3 / count, 3), sql=round(statements[0] / count, 2))
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
