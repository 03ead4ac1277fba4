"""Push and pull a large blob through a real Cargohold; report MB/s and the server's peak RSS.

    python bench/blob_throughput.py [--sizes-mib 64 1024] [--chunk-mib 16]

Starts gunicorn on loopback with the embedded default (SQLite + filesystem) in a temporary folder
on the same disk as the checkout, so figures compare with a plain copy on that disk.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    MiB,
    cargohold_token,
    hash_file,
    make_file,
    pull,
    push_chunked,
    push_single_post,
    timed,
)
from tests.support.server import child_pids, make_server  # noqa: E402


class RssSampler(threading.Thread):
    """Peak resident memory of the gunicorn master and its workers, sampled from /proc."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_worker = 0
        self.peak_total = 0
        self.running = True

    def _pids(self) -> list[int]:
        return [self.pid, *child_pids(self.pid)]

    @staticmethod
    def _rss(pid: int) -> int:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            pass
        return 0

    def run(self) -> None:
        while self.running:
            sizes = [self._rss(p) for p in self._pids()]
            self.peak_worker = max(self.peak_worker, max(sizes[1:], default=0))
            self.peak_total = max(self.peak_total, sum(sizes))
            time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes-mib", type=int, nargs="+", default=[64, 1024])
    parser.add_argument("--chunk-mib", type=int, default=16)
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/blob_throughput.json")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="cargohold-bench-", dir=ROOT / "bench/results"))
    server = make_server(work / "data")
    server.start()
    sampler = RssSampler(server.proc.pid)
    sampler.start()
    results = []
    try:
        base = server.url
        for size_mib in args.sizes_mib:
            path = work / f"blob-{size_mib}"
            digest = make_file(path, size_mib * MiB)
            hash_seconds = timed(hash_file, path)
            copy_start = time.perf_counter()
            shutil.copyfile(path, work / "copy")
            copy_seconds = time.perf_counter() - copy_start
            (work / "copy").unlink()
            repos = [f"acme/main/bench-{size_mib}-{kind}" for kind in ("mono", "chunked")]
            s = requests.Session()
            scopes = [f"repository:{r}:pull,push" for r in repos]
            s.headers["Authorization"] = "Bearer " + cargohold_token(
                base, ("admin", server.admin_password), scopes
            )
            row = {
                "size_mib": size_mib,
                "sha256sum_s": hash_seconds,
                "disk_copy_s": copy_seconds,
                "push_monolithic_s": timed(push_single_post, s, base, repos[0], path, digest),
                "pull_s": timed(pull, s, base, repos[0], digest),
                "push_chunked_s": timed(
                    push_chunked, s, base, repos[1], path, digest, args.chunk_mib * MiB
                ),
                "peak_worker_rss_mib": sampler.peak_worker / MiB,
                "peak_total_rss_mib": sampler.peak_total / MiB,
            }
            for key in ("push_monolithic", "pull", "push_chunked", "sha256sum", "disk_copy"):
                seconds = row[f"{key}_s"]
                row[f"{key}_mb_s"] = size_mib * MiB / 1e6 / seconds
            results.append(row)
            path.unlink()
            print(json.dumps(row, indent=1), flush=True)
    finally:
        sampler.running = False
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"chunk_mib": args.chunk_mib, "results": results}, indent=1))
    print(
        "\n| size | push (mono) MB/s | push (16 MiB chunks) MB/s | pull MB/s | "
        "sha256sum MB/s | disk copy MB/s | peak worker RSS MiB |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        print(
            f"| {r['size_mib']} MiB | {r['push_monolithic_mb_s']:.0f} | "
            f"{r['push_chunked_mb_s']:.0f} | {r['pull_mb_s']:.0f} | {r['sha256sum_mb_s']:.0f} | "
            f"{r['disk_copy_mb_s']:.0f} | {r['peak_worker_rss_mib']:.0f} |"
        )


if __name__ == "__main__":
    main()
