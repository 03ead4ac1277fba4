"""Fixed-duration HTTP load with wrk (GET) and hey (HEAD: wrk 4.1 waits for a body after a HEAD
answer's Content-Length and stalls), parsed into requests per second and p50/p99 latency."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


@dataclass
class Load:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    bad: int  # non-2xx/3xx answers and socket errors

    def to_json(self) -> dict[str, float]:
        return self.__dict__.copy()


def _ms(value: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value)
    if not m:
        raise ValueError(f"unparsed latency {value!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def _threads(connections: int) -> int:
    # wrk needs a thread per core at most; more threads than connections is an error.
    return min(2, connections)


def wrk(url: str, connections: int, seconds: int, headers: dict[str, str]) -> Load:
    args = [
        "wrk",
        f"-t{_threads(connections)}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "--timeout",
        "10s",
    ]
    for k, v in headers.items():
        args += ["-H", f"{k}: {v}"]
    out = subprocess.run(
        [*args, url], capture_output=True, text=True, timeout=seconds + 60, check=True
    ).stdout
    lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.M))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = 0
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        bad += int(m.group(1))
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        bad += sum(int(x) for x in m.groups())
    return Load(rps, _ms(lat["50"]), _ms(lat["99"]), requests, bad)


def hey(url: str, connections: int, seconds: int, headers: dict[str, str], method: str) -> Load:
    args = ["hey", "-z", f"{seconds}s", "-c", str(connections), "-m", method, "-t", "10"]
    for k, v in headers.items():
        args += ["-H", f"{k}: {v}"]
    out = subprocess.run(
        [*args, url], capture_output=True, text=True, timeout=seconds + 60, check=True
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    lat = {p: float(s) * 1e3 for p, s in re.findall(r"^\s+(50|99)% in ([\d.]+) secs", out, re.M)}
    codes = {int(c): int(n) for c, n in re.findall(r"\[(\d+)\]\s+(\d+) responses", out)}
    ok = sum(n for c, n in codes.items() if 200 <= c < 400)
    bad = sum(n for c, n in codes.items() if not 200 <= c < 400)
    if m := re.search(r"Error distribution:\n((?:\s+\[\d+\].*\n?)+)", out):
        bad += sum(int(n) for n in re.findall(r"\[(\d+)\]", m.group(1)))
    return Load(rps, lat.get("50", float("nan")), lat.get("99", float("nan")), ok + bad, bad)
