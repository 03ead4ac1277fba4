"""Garbage-collection time against the amount of garbage and the size of the live set.

Builds a registry in process whose live set (blobs referenced by manifests) grows through the
`--live` sizes; at each size, each `--garbage` amount of blobs that lost their last reference
(due candidates) is added and collected by one timed `gc.sweep`. The cost must follow the
garbage, not the live set: compare rows with equal garbage.

`--backend sqlite` (the default): SQLite + filesystem in a temporary folder (or whatever the
CARGOHOLD_* environment names). `--backend postgres`: a new database on the PostgreSQL and a
new prefix in the S3 bucket that `make services` started, both removed afterwards.

    .venv/bin/python bench/gc.py --live 5000 50000 --garbage 1000 10000
    .venv/bin/python bench/gc.py --backend postgres --live 5000 50000 --garbage 1000 10000
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import insert  # noqa: E402

from app import create_app  # noqa: E402
from app.config import Settings  # noqa: E402
from app.models import (  # noqa: E402
    Blob,
    BlobLink,
    GcCandidate,
    Manifest,
    ManifestReference,
    Repository,
    db,
)
from app.models.base import utcnow  # noqa: E402
from app.models.transaction import unit_of_work  # noqa: E402
from app.registry import gc  # noqa: E402

BATCH = 5000
# Objects are written by several threads: S3 answers each small PUT in a round trip.
PUT_THREADS = 16


def _digest(kind: str, i: int) -> str:
    return f"sha256:{'a' if kind == 'live' else 'b'}{i:063x}"


def _repository() -> int:
    with unit_of_work():
        org_registry = db.session.execute(db.text("SELECT id FROM registries LIMIT 1")).scalar()
        repo = Repository(registry_id=org_registry, name="acme/main/bench/gc")
        db.session.add(repo)
        db.session.flush()
        return repo.id


def add(store, repo_id: int, kind: str, start: int, end: int) -> None:
    """Blobs number start..end-1 of a kind. Live: one manifest per 10 layers, linked and
    referenced. Garbage: rows, objects and due candidates, nothing referencing them."""
    old = utcnow() - timedelta(days=2)
    for first in range(start, end, BATCH):
        digests = [_digest(kind, i) for i in range(first, min(end, first + BATCH))]
        with ThreadPoolExecutor(PUT_THREADS) as pool:
            list(pool.map(lambda d: store.put(d, b"x" * 64), digests))
        with unit_of_work():
            db.session.execute(
                insert(Blob), [{"digest": d, "size": 64, "created_at": old} for d in digests]
            )
            if kind == "garbage":
                db.session.execute(
                    insert(GcCandidate), [{"digest": d, "review_at": old} for d in digests]
                )
                continue
            db.session.execute(
                insert(BlobLink),
                [{"repository_id": repo_id, "digest": d, "created_at": old} for d in digests],
            )
            for group in range(0, len(digests), 10):
                layers = digests[group : group + 10]
                manifest = Manifest(
                    repository_id=repo_id,
                    digest=layers[0],
                    media_type="application/vnd.oci.image.manifest.v1+json",
                    size=64,
                )
                db.session.add(manifest)
                db.session.flush()
                db.session.execute(
                    insert(ManifestReference),
                    [{"manifest_id": manifest.id, "digest": d} for d in layers],
                )


@contextmanager
def backend_env(backend: str) -> Iterator[dict[str, str]]:
    """CARGOHOLD_* settings for one run on this backend, cleaned up afterwards."""
    if backend == "sqlite":
        yield {}
        return
    from tests.support.services import load, unique_prefix

    services = load()
    if services is None:
        sys.exit("PostgreSQL and S3 are not running: `make services` first")
    url, prefix = services.create_database(), unique_prefix()
    env = services.server_env(url, prefix)
    # The S3 store takes its credentials from the standard AWS chain, as in production.
    saved = {k: os.environ.get(k) for k in env if k.startswith("AWS_")}
    os.environ.update({k: env.pop(k) for k in saved})
    try:
        yield env
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        services.drop_database(url)
        services.purge(prefix)


def series(lives: list[int], garbages: list[int], backend: str):
    """One registry whose live set grows through `lives`; at each size, each amount of
    garbage is added and collected by one timed sweep. Yields a row per sweep."""
    with (
        tempfile.TemporaryDirectory(prefix="cargohold-bench-gc-") as tmp,
        backend_env(backend) as extra,
    ):
        env = {"CARGOHOLD_DATA_DIR": tmp, "CARGOHOLD_GC_GRACE_SECONDS": "3600", **extra}
        settings = Settings.from_env({**os.environ, **env})
        app = create_app(settings)
        with app.app_context():
            from flask_migrate import upgrade

            upgrade(directory=str(ROOT / "migrations"))
            with unit_of_work():
                from app.access import tenancy

                user = tenancy.create_user("bench", "bench-password-1")
                tenancy.create_org("acme", user)
                tenancy.create_registry("acme", "main")
            store = app.extensions["cargohold.store"]
            repo_id = _repository()
            live_now = garbage_made = 0
            for live in sorted(lives):
                t0 = time.perf_counter()
                add(store, repo_id, "live", live_now, live)
                live_now = live
                for garbage in garbages:
                    add(store, repo_id, "garbage", garbage_made, garbage_made + garbage)
                    garbage_made += garbage
                    built = time.perf_counter() - t0
                    t0 = time.perf_counter()
                    result = gc.sweep(store)
                    elapsed = time.perf_counter() - t0
                    assert len(result.deleted) == garbage, (len(result.deleted), garbage)
                    remaining = db.session.execute(db.text("SELECT count(*) FROM blobs")).scalar()
                    assert remaining == live, remaining
                    db.session.rollback()
                    yield {
                        "backend": backend,
                        "live": live,
                        "garbage": garbage,
                        "gc_seconds": round(elapsed, 3),
                        "per_garbage_blob_ms": round(elapsed * 1000 / max(garbage, 1), 3),
                        "build_seconds": round(built, 1),
                    }
                    t0 = time.perf_counter()
            db.session.remove()
            db.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--live", type=int, nargs="+", default=[5000, 50000])
    parser.add_argument("--garbage", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    out = args.out or ROOT / "bench/results" / (
        "gc.json" if args.backend == "sqlite" else f"gc-{args.backend}.json"
    )
    rows = []
    for row in series(args.live, args.garbage, args.backend):
        print(json.dumps(row), flush=True)
        rows.append(row)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
