"""The whole server's memory, Cargohold alone: idle after a warm-up, and its peak during a 1 GiB
blob push (POST then one streamed PUT) and during manifest reads at 8 connections.

    python bench/memory.py [--root CHECKOUT] [--reps 3] [--size-mib 1024] [--label L]

Both sums over gunicorn's master and workers are printed: the resident sets (RSS, which counts
a page the workers share copy-on-write once per process) and the proportional sets (PSS, from
/proc/<pid>/smaps_rollup, which counts it once). `--root` serves another checkout, so the same
script measures before and after a change, run after run. One JSON line per measure and run.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
MiB = 1024 * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", type=Path, default=HERE, help="checkout to serve")
    parser.add_argument("--reps", type=int, default=1)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--label", default="")
    parser.add_argument("--workdir", type=Path, default=None, help="where the blob file goes")
    args = parser.parse_args()
    sys.path.insert(0, str(args.root.resolve()))

    import requests

    from bench.common import (
        Monitor,
        RegistryAuth,
        make_file,
        process_tree,
        pss_bytes,
        push_monolithic,
        rss_bytes,
        warm_cache,
    )
    from bench.load import wrk
    from bench.oci import MANIFEST_TYPE, push_small_image
    from bench.peers import start_cargohold, stop_all

    work = Path(tempfile.mkdtemp(prefix="cargohold-memory-", dir=args.workdir))
    blob = work / "blob.bin"
    digest = make_file(blob, args.size_mib * MiB)
    warm_cache(blob)
    monitor = Monitor()
    monitor.start()
    service, _server = start_cargohold(work / "server", [f"mem{i}" for i in range(args.reps)])
    try:
        s = requests.Session()
        s.auth = RegistryAuth(service.extra["user"], service.extra["password"])
        repo = "acme/mem0/warm"
        push_small_image(s, service.url, repo, "latest")
        url = f"{service.url}/v2/{repo}/manifests/latest"
        # Every worker has served the common routes once: what stays resident after that.
        wrk(url, 8, 2, {"Accept": MANIFEST_TYPE})
        time.sleep(1)

        def emit(measure: str, rss: float, pss: float, rep: int) -> None:
            row = {"label": args.label, "rep": rep, "measure": measure}
            row.update(rss_mib=round(rss, 1), pss_mib=round(pss, 1))
            print(json.dumps(row), flush=True)

        for rep in range(args.reps):
            tree = process_tree(service.pid)
            idle_rss = sum(rss_bytes(p) for p in tree) / MiB
            idle_pss = sum(pss_bytes(p) for p in tree) / MiB
            emit("idle", idle_rss, idle_pss, rep)
            with monitor.measure(service.pid) as usage:
                wrk(url, 8, 3, {"Accept": MANIFEST_TYPE})
            emit("manifest_get_c8", usage.peak_rss_mib, usage.peak_pss_mib, rep)
            with monitor.measure(service.pid) as usage:
                push_monolithic(s, service.url, f"acme/mem{rep}/big", blob, digest)
            emit(f"push_{args.size_mib}mib", usage.peak_rss_mib, usage.peak_pss_mib, rep)
    finally:
        monitor.stopped.set()
        stop_all()
        blob.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
