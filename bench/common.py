"""Helpers the benchmarks share: test files, OCI blob transfers over requests, timing, and the
memory and CPU of a server's process tree read from /proc."""

from __future__ import annotations

import hashlib
import os
import re
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

MiB = 1024 * 1024
CACHE = Path(os.environ.get("CARGOHOLD_BENCH_CACHE", Path.home() / ".cache/cargohold/bench"))
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


# ---- /proc ----------------------------------------------------------------------------------


def _stat_fields(pid: int) -> list[str] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces and parentheses; the fields after its last ")" do not.
    return stat.rsplit(")", 1)[1].split()


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields:
                children.setdefault(int(fields[1]), []).append(int(entry))
    return children


def process_tree(pid: int) -> list[int]:
    """A process and all its descendants (gunicorn's workers, nginx's worker)."""
    children = _children_map()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def rss_bytes(pid: int) -> int:
    fields = _stat_fields(pid)
    # Field 24 of stat (index 21 after the name) is the resident set in pages.
    return int(fields[21]) * PAGE if fields else 0


def pss_bytes(pid: int) -> int:
    """Proportional set size: each resident page divided by the number of processes mapping
    it. Summed over gunicorn's master and workers it counts the copy-on-write pages they share
    once, where a sum of resident sets counts them once per process."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def process_trees(pids: int | tuple[int, ...]) -> list[int]:
    """The trees of one server, or of several measured as one (replicas and their proxy)."""
    return [p for pid in ((pids,) if isinstance(pids, int) else pids) for p in process_tree(pid)]


def cpu_seconds(pid: int | tuple[int, ...]) -> float:
    """User + system CPU of a process tree, counting children that already exited (cutime and
    cstime of their parent), so a worker gunicorn restarted still counts."""
    total = 0
    for p in process_trees(pid):
        fields = _stat_fields(p)
        if fields:
            total += sum(int(x) for x in fields[11:15])
    return total / CLK_TCK


@dataclass
class Usage:
    cpu_s: float = 0.0
    peak_rss_mib: float = 0.0
    peak_process_rss_mib: float = 0.0
    peak_pss_mib: float = 0.0
    wall_s: float = 0.0


class Monitor(threading.Thread):
    """Samples the resident memory of the process trees being measured, every 50 ms.

    `measure(pid)` is a context giving the peak RSS (sum over the tree, and the largest single
    process) and the CPU seconds the tree used while the block ran."""

    def __init__(self, interval: float = 0.05):
        super().__init__(daemon=True)
        self.interval = interval
        self.watching: dict[int | tuple[int, ...], Usage] = {}
        self.lock = threading.Lock()
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            with self.lock:
                watched = list(self.watching.items())
            for pid, usage in watched:
                self._sample(pid, usage)

    @staticmethod
    def _sample(pid: int | tuple[int, ...], usage: Usage) -> None:
        tree = process_trees(pid)
        sizes = [rss_bytes(p) for p in tree]
        usage.peak_rss_mib = max(usage.peak_rss_mib, sum(sizes) / MiB)
        usage.peak_pss_mib = max(usage.peak_pss_mib, sum(pss_bytes(p) for p in tree) / MiB)
        usage.peak_process_rss_mib = max(usage.peak_process_rss_mib, max(sizes, default=0) / MiB)

    @contextmanager
    def measure(self, pid: int | tuple[int, ...] | None) -> Iterator[Usage]:
        usage = Usage()
        if pid is None:
            yield usage
            return
        cpu0, t0 = cpu_seconds(pid), time.perf_counter()
        self._sample(pid, usage)
        with self.lock:
            self.watching[pid] = usage
        try:
            yield usage
        finally:
            with self.lock:
                self.watching.pop(pid, None)
            self._sample(pid, usage)
            usage.cpu_s = cpu_seconds(pid) - cpu0
            usage.wall_s = time.perf_counter() - t0

    def stop(self) -> None:
        self.stopped.set()


# ---- files and timing -----------------------------------------------------------------------


def make_file(path: Path, size: int) -> str:
    """`size` bytes no layer of the stack can deduplicate or compress; returns its digest."""
    h = hashlib.sha256()
    piece = os.urandom(16 * MiB)
    with open(path, "wb") as f:
        written = 0
        while written < size:
            chunk = piece[: min(len(piece), size - written)]
            chunk = written.to_bytes(8, "big") + chunk[8:]
            f.write(chunk)
            h.update(chunk)
            written += len(chunk)
    return "sha256:" + h.hexdigest()


def hash_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while b := f.read(MiB):
            h.update(b)
    return "sha256:" + h.hexdigest()


def warm_cache(path: Path) -> None:
    """Read a file once so every run reads it from the page cache: the disk's read speed is then
    the same for every system, and out of the comparison."""
    with open(path, "rb") as f:
        while f.read(16 * MiB):
            pass


def timed(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> float:
    start = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - start


def summary(samples: list[float]) -> dict[str, float]:
    return {
        "median": statistics.median(samples),
        "min": min(samples),
        "max": max(samples),
        "n": len(samples),
    }


@dataclass
class Measure:
    """One quantity measured on every system, several times, alternating between systems."""

    id: str
    group: str
    label: str
    unit: str
    higher_is_better: bool
    limit: str | None = None
    values: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)
    cpu: dict[str, list[float]] = field(default_factory=dict)
    rss: dict[str, list[float]] = field(default_factory=dict)
    rss_process: dict[str, list[float]] = field(default_factory=dict)
    pss: dict[str, list[float]] = field(default_factory=dict)

    def add(self, system: str, value: float) -> None:
        self.values.setdefault(system, []).append(value)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "group": self.group,
            "label": self.label,
            "unit": self.unit,
            "higher_is_better": self.higher_is_better,
            "limit": self.limit,
            "samples": self.values,
            "summary": {k: summary(v) for k, v in self.values.items() if v},
            "errors": self.errors,
            "notes": self.notes,
            "server_cpu_s": {k: summary(v) for k, v in self.cpu.items() if v},
            "server_peak_rss_mib": {k: summary(v) for k, v in self.rss.items() if v},
            "server_peak_pss_mib": {k: summary(v) for k, v in self.pss.items() if v},
            "server_peak_process_rss_mib": {
                k: summary(v) for k, v in self.rss_process.items() if v
            },
        }


# ---- OCI over requests ----------------------------------------------------------------------

_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')
_REPO_PATH = re.compile(r"^/v2/(.+?)/(?:blobs|manifests|tags|referrers)/")


class RegistryAuth(requests.auth.AuthBase):
    """Token auth as registry clients do it (docker, containerd, skopeo): a Bearer challenge is
    answered with a token for the challenged scope, fetched from the realm with Basic
    credentials, and later requests on the same repository send that token up front.

    A request is replayed once after a challenge, so the first request on a repository must
    not stream a body from a file: the push helpers start with a bodiless POST."""

    def __init__(self, user: str, password: str, extra_scopes: tuple[str, ...] = ()):
        self.basic = (user, password)
        self.extra_scopes = list(extra_scopes)
        self.tokens: dict[str, str] = {}

    @staticmethod
    def _key(url: str) -> str:
        path = urlsplit(url).path
        m = _REPO_PATH.match(path)
        return m.group(1) if m else path

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        token = self.tokens.get(self._key(r.url or ""))
        if token:
            r.headers["Authorization"] = f"Bearer {token}"
        r.register_hook("response", self._on_response)
        return r

    def _on_response(self, resp: requests.Response, **kwargs: Any) -> requests.Response:
        challenge = resp.headers.get("WWW-Authenticate", "")
        request = resp.request
        if resp.status_code != 401 or not challenge.lower().startswith("bearer"):
            return resp
        if request.headers.get("X-Bench-Retried"):
            return resp
        params = dict(_CHALLENGE.findall(challenge))
        scopes = [params["scope"], *self.extra_scopes] if "scope" in params else self.extra_scopes
        answer = requests.get(
            params["realm"],
            params={"service": params.get("service", ""), "scope": scopes},
            auth=self.basic,
            timeout=60,
        )
        answer.raise_for_status()
        token = answer.json()["token"]
        self.tokens[self._key(request.url or "")] = token
        resp.content  # noqa: B018 - read the body so the connection can be reused
        resp.close()
        retry = request.copy()
        retry.headers["Authorization"] = f"Bearer {token}"
        retry.headers["X-Bench-Retried"] = "1"
        again = resp.connection.send(retry, **kwargs)
        again.history.append(resp)
        again.request = retry
        return again


def cargohold_token(base: str, auth: tuple[str, str] | None, scopes: list[str]) -> str:
    r = requests.get(f"{base}/auth/token", params={"scope": scopes}, auth=auth, timeout=60)
    r.raise_for_status()
    return r.json()["token"]


def _location(base: str, r: requests.Response) -> str:
    location = r.headers["Location"]
    return location if location.startswith("http") else base + location


def _with_digest(location: str, digest: str) -> str:
    return f"{location}{'&' if '?' in location else '?'}digest={digest}"


def push_single_post(
    s: requests.Session, base: str, repo: str, path: Path, digest: str, chunk: int = 0
) -> None:
    """One `POST ?digest=` with the whole body (the spec's optional single-request push)."""
    with open(path, "rb") as f:
        r = s.post(f"{base}/v2/{repo}/blobs/uploads/?digest={digest}", data=f)
    assert r.status_code == 201, r.text


def push_monolithic(
    s: requests.Session, base: str, repo: str, path: Path, digest: str, chunk: int = 0
) -> None:
    """`POST` then one `PUT ?digest=` with the whole body: the spec's monolithic upload, which
    every registry supports."""
    r = s.post(f"{base}/v2/{repo}/blobs/uploads/")
    assert r.status_code == 202, r.text
    with open(path, "rb") as f:
        r = s.put(
            _with_digest(_location(base, r), digest),
            data=f,
            headers={"Content-Type": "application/octet-stream"},
        )
    assert r.status_code == 201, r.text


def push_chunked(
    s: requests.Session, base: str, repo: str, path: Path, digest: str, chunk: int
) -> None:
    r = s.post(f"{base}/v2/{repo}/blobs/uploads/")
    assert r.status_code == 202, r.text
    location = _location(base, r)
    offset = 0
    with open(path, "rb") as f:
        while data := f.read(chunk):
            r = s.patch(
                location,
                data=data,
                headers={
                    "Content-Range": f"{offset}-{offset + len(data) - 1}",
                    "Content-Type": "application/octet-stream",
                },
            )
            assert r.status_code == 202, r.text
            location = _location(base, r)
            offset += len(data)
    r = s.put(_with_digest(location, digest))
    assert r.status_code == 201, r.text


def pull(s: requests.Session, base: str, repo: str, digest: str) -> None:
    pull_url(s, f"{base}/v2/{repo}/blobs/{digest}", digest)


def pull_url(s: requests.Session, url: str, digest: str) -> None:
    """Stream a body and check its digest, as a client that verifies what it pulls does."""
    h = hashlib.sha256()
    with s.get(url, stream=True) as r:
        assert r.status_code == 200, r.status_code
        for chunk in r.iter_content(MiB):
            h.update(chunk)
    assert "sha256:" + h.hexdigest() == digest


# ---- results --------------------------------------------------------------------------------


class Results:
    """Every measure of a run, which systems failed, and what the run ran on."""

    def __init__(self, monitor: Monitor):
        self.monitor = monitor
        self.measures: dict[str, Measure] = {}
        self.failures: dict[str, str] = {}
        self.meta: dict[str, Any] = {}
        self.phases: dict[str, float] = {}

    def measure(
        self,
        id: str,
        group: str,
        label: str,
        unit: str,
        higher_is_better: bool,
        limit: str | None = None,
    ) -> Measure:
        if id not in self.measures:
            self.measures[id] = Measure(id, group, label, unit, higher_is_better, limit)
        return self.measures[id]

    def run(
        self,
        measure: Measure,
        system: str,
        pid: int | None,
        fn: Callable[[], float],
    ) -> float | None:
        """Run one sample of `measure` on `system`, whose server tree is `pid` (None for the
        machine limits), keeping the server's CPU and peak RSS beside it. A failure is kept as
        the system's error for that measure, and the run goes on."""
        for key in (system, f"{system}:{measure.group}"):
            if key in self.failures:
                measure.errors.setdefault(system, f"skipped: {self.failures[key]}")
                return None
        try:
            with self.monitor.measure(pid) as usage:
                value = fn()
        except Exception as exc:  # noqa: BLE001 - a failed sample must not end the run
            message = f"{type(exc).__name__}: {exc}"[:500]
            measure.errors[system] = message
            log(f"  {measure.id} {system}: FAILED {message}")
            return None
        measure.add(system, value)
        if pid is not None:
            measure.cpu.setdefault(system, []).append(usage.cpu_s)
            measure.rss.setdefault(system, []).append(usage.peak_rss_mib)
            measure.rss_process.setdefault(system, []).append(usage.peak_process_rss_mib)
            measure.pss.setdefault(system, []).append(usage.peak_pss_mib)
        log(f"  {measure.id} {system}: {value:.4g} {measure.unit}")
        return value

    def to_json(self) -> dict[str, Any]:
        return {
            "meta": self.meta,
            "failures": self.failures,
            "phases_s": self.phases,
            "measures": [m.to_json() for m in self.measures.values()],
        }


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)
