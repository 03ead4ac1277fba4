"""Cargohold at scale: a repository with N tags, N repositories, a Python index of N projects
(N = 100,000 by default), and what clients ask of them: a page of 100 tags, pages of the
catalog, the Simple root index, and a manifest PUT under a new tag into the big repository
against one into an empty repository.

    python bench/scale.py [--n 100000] [--requests 30] [--database-url URL]

The rows are written straight into the database (bulk inserts, as a long-lived registry would
have accumulated them; a manifest PUT per tag would take most of an hour), then the server is
asked over HTTP, one request at a time: each figure is the p50 (and p90) of `--requests`
requests, after one warm-up. Cargohold runs as `make bench` runs it (bench/peers.py).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# `--root CHECKOUT` measures another checkout of Cargohold (before and after a change).
if "--root" in sys.argv:
    ROOT = Path(sys.argv[sys.argv.index("--root") + 1]).resolve()
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from bench.common import RegistryAuth, cargohold_token, log  # noqa: E402
from bench.oci import MANIFEST_TYPE, push_small_image, put_manifest  # noqa: E402
from bench.peers import start_cargohold, stop_all  # noqa: E402

BATCH = 5000


def _timed_get(s: requests.Session, url: str, headers: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    r = s.get(url, headers=headers or {})
    elapsed = time.perf_counter() - start
    if r.status_code != 200:
        raise RuntimeError(f"GET {url}: {r.status_code} {r.text[:200]}")
    return elapsed * 1e3


def _stats(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered), 2),
        "p90_ms": round(ordered[int(len(ordered) * 0.9) - 1], 2),
        "n": len(ordered),
    }


def _bulk(engine, statement: str, rows: list[dict]) -> None:
    with engine.begin() as conn:
        for i in range(0, len(rows), BATCH):
            conn.execute(text(statement), rows[i : i + BATCH])


def populate(engine, n: int, repo_tags: str, manifest_id: int, now: str) -> None:
    with engine.begin() as conn:
        repo_id = conn.execute(
            text("SELECT id FROM repositories WHERE name = :n"), {"n": repo_tags}
        ).scalar_one()
        registry = {
            name: conn.execute(
                text(
                    "SELECT r.id FROM registries r JOIN organisations o"
                    " ON o.id = r.organisation_id WHERE o.name = 'acme' AND r.name = :n"
                ),
                {"n": name},
            ).scalar_one()
            for name in ("catalog", "index")
        }
    _bulk(
        engine,
        "INSERT INTO tags (repository_id, name, manifest_id, updated_at) VALUES (:r, :n, :m, :t)",
        [{"r": repo_id, "n": f"t{i:06d}", "m": manifest_id, "t": now} for i in range(n)],
    )
    _bulk(
        engine,
        "INSERT INTO repositories (registry_id, name, created_at) VALUES (:r, :n, :t)",
        [{"r": registry["catalog"], "n": f"acme/catalog/r{i:06d}", "t": now} for i in range(n)],
    )
    _bulk(
        engine,
        "INSERT INTO python_projects (registry_id, name, created_at, updated_at)"
        " VALUES (:r, :n, :t, :t)",
        [{"r": registry["index"], "n": f"project-{i:06d}", "t": now} for i in range(n)],
    )
    with engine.begin() as conn:
        ids = dict(
            conn.execute(
                text("SELECT name, id FROM python_projects WHERE registry_id = :r"),
                {"r": registry["index"]},
            ).all()
        )
    files = []
    for name, pid in ids.items():
        filename = f"{name.replace('-', '_')}-1.0.tar.gz"
        files.append(
            {
                "reg": registry["index"],
                "pid": pid,
                "v": "1.0",
                "f": filename,
                "ft": "sdist",
                "size": 100,
                "sha": "0" * 64,
                "b2": "0" * 64,
                "md5": "0" * 32,
                "mv": "2.1",
                "msha": "0" * 64,
                "msize": 10,
                "md": "sha256:" + "0" * 64,
                "t": now,
            }
        )
    _bulk(
        engine,
        "INSERT INTO python_files (registry_id, project_id, version, filename, filetype, size,"
        " sha256, blake2_256, md5, metadata_version, metadata_sha256, metadata_size,"
        " manifest_digest, uploaded_at, yanked) VALUES (:reg, :pid, :v, :f, :ft, :size, :sha,"
        " :b2, :md5, :mv, :msha, :msize, :md, :t, false)",
        files,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--database-url", default="", help="PostgreSQL instead of SQLite")
    parser.add_argument("--root", type=Path, default=ROOT, help="checkout to serve")
    args = parser.parse_args()

    env = {"CARGOHOLD_DATABASE_URL": args.database_url} if args.database_url else None
    work = Path(tempfile.mkdtemp(prefix="cargohold-scale-"))
    service, server = start_cargohold(work, ["catalog", "index", "scale", "empty"], env)
    results: dict[str, dict] = {"n": {"value": args.n}}
    try:
        s = requests.Session()
        s.auth = RegistryAuth(service.extra["user"], service.extra["password"])
        base = service.url
        big, empty = "acme/scale/tags", "acme/empty/tags"
        manifest, digest = push_small_image(s, base, big, "seed")
        push_small_image(s, base, empty, "seed")
        url = args.database_url or f"sqlite:///{server.data_dir / 'cargohold.db'}"
        engine = create_engine(url)
        with engine.begin() as conn:
            manifest_id = conn.execute(
                text(
                    "SELECT m.id FROM manifests m JOIN repositories r ON r.id = m.repository_id"
                    " WHERE r.name = :r AND m.digest = :d"
                ),
                {"r": big, "d": digest},
            ).scalar_one()
        now = time.strftime("%Y-%m-%d %H:%M:%S")
        start = time.perf_counter()
        populate(engine, args.n, big, manifest_id, now)
        if engine.dialect.name == "postgresql":
            # What autovacuum does within a minute of such growth; measured before it, the
            # planner still believes the tables small (a restore needs the same, see
            # docs/operations.md).
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("ANALYZE"))
        took = time.perf_counter() - start
        log(f"populated {args.n:,} tags, repositories and projects in {took:.1f}s")
        engine.dispose()

        def measure(name: str, fn) -> None:
            fn()  # warm-up (caches, connections)
            results[name] = _stats([fn() for _ in range(args.requests)])
            log(f"  {name}: {results[name]}")

        middle_tag = f"t{args.n // 2:06d}"
        middle_repo = f"acme/catalog/r{args.n // 2:06d}"
        measure("tags_first_page", lambda: _timed_get(s, f"{base}/v2/{big}/tags/list?n=100"))
        measure(
            "tags_middle_page",
            lambda: _timed_get(s, f"{base}/v2/{big}/tags/list?n=100&last={middle_tag}"),
        )
        catalog = requests.Session()
        auth = (service.extra["user"], service.extra["password"])
        token = cargohold_token(base, auth, ["registry:catalog:*"])
        catalog.headers["Authorization"] = f"Bearer {token}"
        measure("catalog_first_page", lambda: _timed_get(catalog, f"{base}/v2/_catalog?n=100"))
        measure(
            "catalog_middle_page",
            lambda: _timed_get(catalog, f"{base}/v2/_catalog?n=100&last={middle_repo}"),
        )
        simple = f"{base}/api/v1/acme/index/python/simple/"
        plain = requests.Session()
        for kind, accept in (
            ("json", "application/vnd.pypi.simple.v1+json"),
            ("html", "text/html"),
        ):
            measure(
                f"simple_root_{kind}", lambda a=accept: _timed_get(plain, simple, {"Accept": a})
            )

        counter = iter(range(10**9))

        def put_into(repo: str) -> float:
            tag = f"new{next(counter):07d}"
            start = time.perf_counter()
            put_manifest(s, base, repo, tag, manifest)
            return (time.perf_counter() - start) * 1e3

        # Alternating, so load on the machine falls on both alike.
        into_big, into_empty = [], []
        for _ in range(args.requests):
            into_empty.append(put_into(empty))
            into_big.append(put_into(big))
        results["put_tag_empty_repo"] = _stats(into_empty)
        results["put_tag_big_repo"] = _stats(into_big)
        log(f"  put: empty {results['put_tag_empty_repo']} big {results['put_tag_big_repo']}")
        r = s.get(f"{base}/v2/{big}/manifests/seed", headers={"Accept": MANIFEST_TYPE})
        assert r.status_code == 200
    finally:
        stop_all()
    print(json.dumps(results))


if __name__ == "__main__":
    main()
