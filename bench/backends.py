"""Cargohold on its two storage backends: the embedded default (SQLite + filesystem) against
PostgreSQL + S3 (SeaweedFS), with blob GETs redirected to presigned URLs and streamed through,
and two replicas behind nginx: blobs, images, manifest reads (anonymous and with a bearer
token), manifest PUTs, tags lists and the catalog, measured as `make bench` measures them.

    make bench-backends            # or: .venv/bin/python bench/backends.py [--reps 2]

Needs the services `scripts/services.sh start` runs. Writes bench/results/backends.json and the
table between the `backends` markers of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import oci, peers  # noqa: E402
from bench.common import MiB, Monitor, Results, log, make_file, warm_cache  # noqa: E402
from tests.support.services import load, unique_prefix  # noqa: E402

RESULTS = ROOT / "bench" / "results"
DOC = ROOT / "docs" / "benchmarks.md"
START, END = "<!-- backends:start -->", "<!-- backends:end -->"
SYSTEMS = ("filesystem", "s3-redirect", "s3-stream", "s3-redirect-2x")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=2)
    p.add_argument("--blob-mib", type=int, default=1024)
    p.add_argument("--chunk-mib", type=int, default=16)
    p.add_argument("--layers", type=int, default=20)
    p.add_argument("--layer-mib", type=int, default=2)
    p.add_argument("--seconds", type=int, default=2, help="duration of each wrk/hey run")
    p.add_argument("--tags", type=int, default=2_000)
    p.add_argument("--repos", type=int, default=200)
    p.add_argument("--systems", nargs="*", default=list(SYSTEMS), help="a reduced run")
    return p.parse_args()


def table(doc: dict) -> str:
    systems = doc.get("systems", SYSTEMS)
    rows = [
        "| measure | " + " | ".join(systems) + " |",
        "| --- |" + " --- |" * len(systems),
    ]
    for m in doc["measures"]:
        cells = []
        for name in systems:
            s = m["summary"].get(name)
            if s is None:
                cells.append(f"failed: {m['errors'].get(name, '?')[:60]}")
                continue
            fmt = "{:.0f}" if m["unit"] in ("MB/s", "req/s") else "{:.2f}"
            cell = fmt.format(s["median"])
            if s["n"] > 1:
                cell += f" ({fmt.format(s['min'])}–{fmt.format(s['max'])})"
            cells.append(cell)
        rows.append(f"| {m['label']}, {m['unit']} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def write_doc(doc: dict) -> None:
    text = DOC.read_text()
    section = (
        f"{START}\n\nMeasured {doc['started']}, {doc['reps']} runs each, median (min–max). "
        "`s3-redirect` answers blob GETs with a 307 to a presigned URL (the default on S3); "
        "`s3-stream` streams them through Cargohold; `s3-redirect-2x` is `s3-redirect` served by "
        "two Cargohold replicas on one database and bucket behind nginx (round robin).\n\n"
        f"{table(doc)}\n\n{END}"
    )
    if START in text and END in text:
        head, rest = text.split(START, 1)
        text = head + section + rest.split(END, 1)[1]
    else:
        text = text.rstrip() + "\n\n## Storage backends\n\n" + section + "\n"
    DOC.write_text(text)


def main() -> int:
    args = parse_args()
    services = load()
    if services is None:
        log("PostgreSQL and S3 are not running: scripts/services.sh start")
        return 1
    started = time.strftime("%Y-%m-%d %H:%M")
    work = Path(tempfile.mkdtemp(prefix="backends-", dir=RESULTS))
    monitor = Monitor()
    monitor.start()
    res = Results(monitor)
    made: list[tuple[str, str]] = []
    try:
        big = work / "blob"
        digest = make_file(big, args.blob_mib * MiB)
        warm_cache(big)
        systems = []
        for name in args.systems:
            env: dict[str, str] = {}
            if name != "filesystem":
                url, prefix = services.create_database(), unique_prefix()
                made.append((url, prefix))
                redirect = "false" if name == "s3-stream" else "true"
                env = services.server_env(url, prefix, CARGOHOLD_S3_REDIRECT=redirect)
            if name.endswith("-2x"):
                # Two replicas on one database and bucket behind nginx, as in production.
                service = peers.start_cargohold_replicas(work / name, env)
            else:
                service, _server = peers.start_cargohold(work / name, [], extra_env=env)
            auth = (service.extra["user"], service.extra["password"])
            systems.append(oci.OciSystem(name, service, "acme/public/bench", auth))
        log("blobs")
        oci.blobs(res, systems, args.reps, [(big, digest)], args.chunk_mib * MiB)
        log("images")
        oci.images(res, systems, args.reps, work / "images", args.layers, args.layer_mib * MiB)
        log("manifests")
        oci.manifests(res, systems, args.reps, args.seconds)
        log("tags and catalog")
        oci.tags_and_catalog(res, systems, max(args.reps, 3), args.tags, args.repos)
    finally:
        monitor.stop()
        peers.stop_all()
        for url, prefix in made:
            services.drop_database(url)
            services.purge(prefix)
        shutil.rmtree(work, ignore_errors=True)
    doc = {
        "started": started,
        "reps": args.reps,
        "systems": args.systems,
        "measures": [m.to_json() for m in res.measures.values()],
    }
    (RESULTS / "backends.json").write_text(json.dumps(doc, indent=1) + "\n")
    write_doc(doc)
    print(table(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
