"""Push and pull a large blob through a real Cargohold; report MB/s and the server's peak RSS.

    python bench/blob_throughput.py [--sizes-mib 64 1024] [--chunk-mib 16]

Starts gunicorn on loopback with the embedded default (SQLite + filesystem) in a temporary folder
on the same disk as the checkout, so figures compare with a plain copy on that disk.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.server import child_pids, make_server  # noqa: E402

MiB = 1024 * 1024


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


def make_file(path: Path, size: int) -> tuple[str, float]:
    h = hashlib.sha256()
    piece = os.urandom(16 * MiB)
    with open(path, "wb") as f:
        written = 0
        while written < size:
            chunk = piece[: min(len(piece), size - written)]
            # Vary each piece so no layer of the stack can deduplicate it.
            chunk = written.to_bytes(8, "big") + chunk[8:]
            f.write(chunk)
            h.update(chunk)
            written += len(chunk)
    start = time.perf_counter()
    h2 = hashlib.sha256()
    with open(path, "rb") as f:
        while b := f.read(MiB):
            h2.update(b)
    return "sha256:" + h.hexdigest(), time.perf_counter() - start


def token(base: str, user: str, password: str, repos: list[str]) -> str:
    scopes = [f"repository:{r}:pull,push" for r in repos]
    r = requests.get(f"{base}/auth/token", params={"scope": scopes}, auth=(user, password))
    r.raise_for_status()
    return r.json()["token"]


def push_monolithic(s: requests.Session, base: str, repo: str, path: Path, digest: str) -> None:
    with open(path, "rb") as f:
        r = s.post(f"{base}/v2/{repo}/blobs/uploads/?digest={digest}", data=f)
    assert r.status_code == 201, r.text


def push_chunked(
    s: requests.Session, base: str, repo: str, path: Path, digest: str, chunk: int
) -> None:
    r = s.post(f"{base}/v2/{repo}/blobs/uploads/")
    assert r.status_code == 202, r.text
    location = base + r.headers["Location"]
    offset = 0
    with open(path, "rb") as f:
        while data := f.read(chunk):
            r = s.patch(
                location,
                data=data,
                headers={"Content-Range": f"{offset}-{offset + len(data) - 1}"},
            )
            assert r.status_code == 202, r.text
            location = base + r.headers["Location"]
            offset += len(data)
    r = s.put(f"{location}?digest={digest}")
    assert r.status_code == 201, r.text


def pull(s: requests.Session, base: str, repo: str, digest: str) -> None:
    h = hashlib.sha256()
    with s.get(f"{base}/v2/{repo}/blobs/{digest}", stream=True) as r:
        assert r.status_code == 200
        for chunk in r.iter_content(MiB):
            h.update(chunk)
    assert "sha256:" + h.hexdigest() == digest


def timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


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
            digest, hash_seconds = make_file(path, size_mib * MiB)
            copy_start = time.perf_counter()
            shutil.copyfile(path, work / "copy")
            copy_seconds = time.perf_counter() - copy_start
            (work / "copy").unlink()
            repos = [f"acme/main/bench-{size_mib}-{kind}" for kind in ("mono", "chunked")]
            s = requests.Session()
            s.headers["Authorization"] = "Bearer " + token(
                base, "admin", server.admin_password, repos
            )
            row = {
                "size_mib": size_mib,
                "sha256sum_s": hash_seconds,
                "disk_copy_s": copy_seconds,
                "push_monolithic_s": timed(push_monolithic, s, base, repos[0], path, digest),
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
