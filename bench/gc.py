"""Garbage-collection time against the amount of garbage and the size of the live set.

Builds a registry in process (SQLite + filesystem in a temporary folder, or whatever the
CARGOHOLD_* environment names), with `--live` blobs referenced by manifests and `--garbage`
blobs that lost their last reference (due candidates), then times one `gc.sweep`. The cost
must follow the garbage, not the live set: compare rows with equal garbage.

    .venv/bin/python bench/gc.py --live 5000 50000 --garbage 1000 10000
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
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


def _digest(kind: str, i: int) -> str:
    return f"sha256:{'a' if kind == 'live' else 'b'}{i:063x}"


def build(store, live: int, garbage: int) -> None:
    """Live blobs: one manifest per 10 layers, linked and referenced. Garbage: rows, objects
    and due candidates, nothing referencing them."""
    old = utcnow() - timedelta(days=2)
    with unit_of_work():
        org_registry = db.session.execute(db.text("SELECT id FROM registries LIMIT 1")).scalar()
        repo = Repository(registry_id=org_registry, name="acme/main/bench/gc")
        db.session.add(repo)
        db.session.flush()
        repo_id = repo.id
    for kind, count in (("live", live), ("garbage", garbage)):
        for start in range(0, count, BATCH):
            digests = [_digest(kind, i) for i in range(start, min(count, start + BATCH))]
            for d in digests:
                store.put(d, b"x" * 64)
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


def one(live: int, garbage: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="cargohold-bench-gc-") as tmp:
        env = {"CARGOHOLD_DATA_DIR": tmp, "CARGOHOLD_GC_GRACE_SECONDS": "3600"}
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
            t0 = time.perf_counter()
            build(store, live, garbage)
            built = time.perf_counter() - t0
            t0 = time.perf_counter()
            result = gc.sweep(store)
            elapsed = time.perf_counter() - t0
            assert len(result.deleted) == garbage, (len(result.deleted), garbage)
            remaining = db.session.execute(db.text("SELECT count(*) FROM blobs")).scalar()
            assert remaining == live, remaining
            db.session.remove()
            db.engine.dispose()
    return {
        "live": live,
        "garbage": garbage,
        "gc_seconds": round(elapsed, 3),
        "per_garbage_blob_ms": round(elapsed * 1000 / max(garbage, 1), 3),
        "build_seconds": round(built, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--live", type=int, nargs="+", default=[5000, 50000])
    parser.add_argument("--garbage", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/gc.json")
    args = parser.parse_args()
    rows = []
    for live in args.live:
        for garbage in args.garbage:
            row = one(live, garbage)
            print(json.dumps(row), flush=True)
            rows.append(row)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
