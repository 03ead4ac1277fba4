"""Server time of the console's largest pages on the embedded default (SQLite + filesystem):
a registry with 1,000 repositories and a repository with 1,000 tags, paginated at 50.

Requests go through Flask's test client in this process, so the figures are the application's
own time (routing, queries, templates), without a network or a WSGI server. Each page is also
counted in SQL statements, which must not grow with the number of rows.

    .venv/bin/python bench/console.py [--rows 1000] [--runs 30]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from flask_migrate import upgrade  # noqa: E402
from sqlalchemy import event, insert  # noqa: E402

from app import create_app  # noqa: E402
from app.access import tenancy  # noqa: E402
from app.config import Settings  # noqa: E402
from app.models import Blob, Manifest, Repository, Tag, db  # noqa: E402
from app.models.base import utcnow  # noqa: E402

PASSWORD = "bench-password-1"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
IMAGE_CONFIG = "application/vnd.oci.image.config.v1+json"


def seed(rows: int) -> None:
    user = tenancy.create_user("bench", PASSWORD)
    tenancy.create_org("bench", user)
    registry = tenancy.create_registry("bench", "main")
    now = utcnow()
    digests = [f"sha256:{i:064x}" for i in range(1, 2 * rows + 1)]
    db.session.execute(
        insert(Blob), [{"digest": d, "size": 500, "created_at": now} for d in digests]
    )
    repos = [
        {"registry_id": registry.id, "name": f"bench/main/app/service-{i:05d}"} for i in range(rows)
    ]
    repos.append({"registry_id": registry.id, "name": "bench/main/big"})
    db.session.execute(insert(Repository), repos)
    ids = dict(db.session.execute(db.select(Repository.name, Repository.id)).all())
    big = ids["bench/main/big"]
    manifests = [
        {
            "repository_id": ids[r["name"]],
            "digest": digests[i],
            "media_type": OCI_MANIFEST,
            "size": 500,
            "artifact_type": IMAGE_CONFIG,
            "created_at": now,
        }
        for i, r in enumerate(repos[:rows])
    ] + [
        {
            "repository_id": big,
            "digest": digests[rows + i],
            "media_type": OCI_MANIFEST,
            "size": 500,
            "artifact_type": IMAGE_CONFIG,
            "created_at": now,
        }
        for i in range(rows)
    ]
    db.session.execute(insert(Manifest), manifests)
    mids = dict(db.session.execute(db.select(Manifest.digest, Manifest.id)).all())
    tags = [
        {
            "repository_id": ids[r["name"]],
            "name": "latest",
            "manifest_id": mids[digests[i]],
            "updated_at": now,
        }
        for i, r in enumerate(repos[:rows])
    ] + [
        {
            "repository_id": big,
            "name": f"v{i:05d}",
            "manifest_id": mids[digests[rows + i]],
            "updated_at": now,
        }
        for i in range(rows)
    ]
    db.session.execute(insert(Tag), tags)
    db.session.commit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "console.json")
    args = parser.parse_args()

    app = create_app(Settings(data_dir=Path(tempfile.mkdtemp(prefix="cargohold-bench-console-"))))
    statements = [0]
    with app.app_context():
        upgrade()
        seed(args.rows)

        @event.listens_for(db.engine, "before_cursor_execute")
        def _count(*_args):
            statements[0] += 1

    client = app.test_client()
    page = client.get("/sign-in").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    r = client.post(
        "/sign-in", data={"username": "bench", "password": PASSWORD, "csrf_token": csrf}
    )
    assert r.status_code == 302, r.status_code
    pages = {
        f"registry, {args.rows} repositories, by name": "/orgs/bench/main",
        f"registry, {args.rows} repositories, by last push": "/orgs/bench/main?sort=pushed",
        f"registry, {args.rows} repositories, page 20": "/orgs/bench/main?page=20",
        f"registry, {args.rows} repositories, filtered": "/orgs/bench/main?q=service-009",
        f"repository, {args.rows} tags": "/orgs/bench/main/r/big",
        f"repository, {args.rows} tags, page 20": "/orgs/bench/main/r/big?page=20",
        "search across both": "/search?q=service-00",
    }
    results = []
    for label, path in pages.items():
        client.get(path)  # warm the template cache
        times, counts = [], []
        for _ in range(args.runs):
            statements[0] = 0
            start = time.perf_counter()
            r = client.get(path)
            times.append((time.perf_counter() - start) * 1000)
            counts.append(statements[0])
            assert r.status_code == 200, (path, r.status_code)
        times.sort()
        results.append(
            {
                "page": label,
                "path": path,
                "median_ms": round(statistics.median(times), 1),
                "p95_ms": round(times[int(len(times) * 0.95) - 1], 1),
                "sql_statements": max(counts),
            }
        )
    print("| page | median ms | p95 ms | SQL statements |\n| --- | --- | --- | --- |")
    for row in results:
        print(f"| {row['page']} | {row['median_ms']} | {row['p95_ms']} | {row['sql_statements']} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"rows": args.rows, "runs": args.runs, "pages": results}, indent=2) + "\n"
    )


if __name__ == "__main__":
    main()
