"""Cargohold side by side with CNCF Distribution, pypiserver and devpi on this machine.

    python bench/run.py [--reps 3] [--quick] [--only limits,oci,pypi]

`make bench` installs the peers (scripts/install-bench-tools.sh) and runs this. Every server
runs on loopback with its storage in one work folder on the checkout's disk; runs alternate
between systems (A B A B ...) and each measure is repeated. Writes bench/results/<time>.json and
bench/results/latest.json, then regenerates docs/benchmarks.md and docs/benchmarks.png from it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import oci, peers, pypi  # noqa: E402
from bench.common import CACHE, MiB, Monitor, Results, log, make_file, warm_cache  # noqa: E402

RESULTS = ROOT / "bench" / "results"
SECTIONS = {"limits", "oci", "pypi"}


def machine() -> dict[str, object]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = Path("/proc/meminfo").read_text().split()[1]
    load = os.getloadavg()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(int(mem) / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load_before": [round(x, 2) for x in load],
    }


def tool_version(*args: str) -> str:
    """The first version number a tool prints about itself."""
    try:
        out = subprocess.run(list(args), capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "missing"
    m = re.search(r"\d+\.\d+(?:\.\d+)?", out.stdout + out.stderr)
    return m.group(0) if m else "unknown"


@contextmanager
def phase(res: Results, name: str) -> Iterator[None]:
    log(f"== {name}")
    start = time.perf_counter()
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - one broken phase must not lose the others
        log(f"== {name}: FAILED {type(exc).__name__}: {exc}")
        res.failures[f"phase:{name}"] = f"{type(exc).__name__}: {exc}"[:500]
    finally:
        res.phases[name] = round(time.perf_counter() - start, 1)


def start(
    res: Results, services: dict[str, peers.Service], name: str, fn: Callable[[], peers.Service]
) -> peers.Service | None:
    try:
        service = fn()
    except Exception as exc:  # noqa: BLE001 - a peer that does not start is a result too
        log(f"{name} did not start: {exc}")
        res.failures[name] = f"did not start: {type(exc).__name__}: {exc}"[:1000]
        return None
    services[name] = service
    log(f"{name} {service.version} at {service.url} (pid {service.pid})")
    return service


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=3, help="runs of each measure on each system")
    p.add_argument("--seconds", type=int, default=2, help="duration of each wrk/hey run")
    p.add_argument("--blob-mib", type=int, default=1024)
    p.add_argument("--small-blob-mib", type=int, default=64)
    p.add_argument("--chunk-mib", type=int, default=16)
    p.add_argument("--layers", type=int, default=20)
    p.add_argument("--layer-mib", type=int, default=2)
    p.add_argument("--tags", type=int, default=10_000)
    p.add_argument("--repos", type=int, default=1_000)
    p.add_argument("--projects", type=int, default=5_000)
    p.add_argument("--only", default=",".join(sorted(SECTIONS)), help="comma-separated sections")
    p.add_argument("--quick", action="store_true", help="small sizes and one run: a smoke test")
    p.add_argument("--no-report", action="store_true", help="do not regenerate the docs")
    args = p.parse_args()
    if args.quick:
        args.reps, args.seconds, args.blob_mib, args.small_blob_mib = 1, 1, 64, 16
        args.tags, args.repos, args.projects = 300, 50, 100
    return args


def main() -> int:
    args = parse_args()
    only = set(args.only.split(","))
    started = time.time()
    stamp = time.strftime("%Y%m%dT%H%M%S", time.localtime(started))
    RESULTS.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"run-{stamp}-", dir=RESULTS))
    monitor = Monitor()
    monitor.start()
    res = Results(monitor)
    res.meta.update(
        started=time.strftime("%Y-%m-%d %H:%M:%S %z", time.localtime(started)),
        machine=machine(),
        args=vars(args),
        tools={
            "wrk": tool_version("wrk", "-v"),
            "hey": tool_version("dpkg-query", "-W", "-f", "${Version}", "hey"),
            "skopeo": tool_version("skopeo", "--version"),
            "twine": tool_version(str(pypi.VENV_BIN / "twine"), "--version"),
            "uv": tool_version(str(pypi.VENV_BIN / "uv"), "--version"),
            "pip (fresh venv)": tool_version(peers.python_for_venvs(), "-m", "pip", "--version"),
        },
    )
    services: dict[str, peers.Service] = {}
    upload_registries = [f"up{i}" for i in range(args.reps)]
    completed = full = False
    try:
        www = work / "www"
        www.mkdir()
        big, small = www / "blob-big", www / "blob-small"
        log(f"writing test files ({args.blob_mib} + {args.small_blob_mib} MiB) in {work}")
        big_digest = make_file(big, args.blob_mib * MiB)
        small_digest = make_file(small, args.small_blob_mib * MiB)
        (www / "static-1k").write_bytes(b"x" * 1024)
        for f in (big, small):
            warm_cache(f)

        start(res, services, "nginx", lambda: peers.start_nginx(work / "nginx", www))
        cargohold = start(
            res,
            services,
            "cargohold",
            lambda: peers.start_cargohold(work / "cargohold", upload_registries)[0],
        )
        res.meta["versions"] = {n: s.version for n, s in services.items()}

        if "limits" in only:
            with phase(res, "limits"):
                oci.limits(res, args.reps, big, big_digest, services.get("nginx"))
                oci.http_limits(res, args.reps, args.seconds, services.get("nginx"), "static-1k")

        if "oci" in only:
            distribution = start(
                res,
                services,
                "distribution",
                lambda: peers.start_distribution(work / "distribution"),
            )
            res.meta["versions"] = {n: s.version for n, s in services.items()}
            systems = []
            if cargohold:
                auth = (cargohold.extra["user"], cargohold.extra["password"])
                systems.append(oci.OciSystem("cargohold", cargohold, "acme/public/bench", auth))
            else:
                missing = peers.Service("cargohold", "", None, work)
                systems.append(oci.OciSystem("cargohold", missing, "acme/public/bench", None))
            if distribution:
                systems.append(oci.OciSystem("distribution", distribution, "bench", None))
            else:
                systems.append(
                    oci.OciSystem(
                        "distribution",
                        peers.Service("distribution", "", None, work),
                        "bench",
                        None,
                    )
                )
            chunk = args.chunk_mib * MiB
            files = [(small, small_digest), (big, big_digest)]
            with phase(res, "blobs"):
                oci.blobs(res, systems, args.reps, files, chunk)
            with phase(res, "images"):
                oci.images(
                    res, systems, args.reps, work / "images", args.layers, args.layer_mib * MiB
                )
            with phase(res, "manifests"):
                oci.manifests(res, systems, args.reps, args.seconds)
            with phase(res, "tags and catalog"):
                oci.tags_and_catalog(res, systems, max(args.reps, 5), args.tags, args.repos)
            if distribution:
                # Its storage (tens of thousands of small files by now) goes with the rest
                # of the work folder at the end, not here, between measures.
                distribution.stop()

        if "pypi" in only:
            pypiserver = start(
                res, services, "pypiserver", lambda: peers.start_pypiserver(work / "pypiserver")
            )
            devpi = start(
                res,
                services,
                "devpi",
                lambda: peers.start_devpi(work / "devpi", ["dev", *upload_registries]),
            )
            res.meta["versions"] = {n: s.version for n, s in services.items()}
            systems_py = _pypi_systems(cargohold, pypiserver, devpi, work)
            with phase(res, "pypi seed"):
                pypi.seed(res, systems_py, args.projects)
            with phase(res, "pypi installs"):
                pypi.installs(res, systems_py, args.reps, work)
            with phase(res, "pypi simple pages"):
                pypi.simple_pages(res, systems_py, args.reps, args.seconds, args.projects)
            with phase(res, "twine"):
                pypi.twine_numpy(res, systems_py, args.reps)
        completed = True
    finally:
        monitor.stop()
        for service in services.values():
            service.stop()
        peers.stop_all()
        res.meta["finished"] = time.strftime("%Y-%m-%d %H:%M:%S %z")
        res.meta["duration_s"] = round(time.time() - started, 1)
        out = RESULTS / f"{stamp}.json"
        out.write_text(json.dumps(res.to_json(), indent=1) + "\n")
        # Only a complete, full-size run becomes the one the docs are generated from.
        full = completed and only >= SECTIONS and not args.quick
        if full:
            shutil.copyfile(out, RESULTS / "latest.json")
            log(f"wrote {out.relative_to(ROOT)} and bench/results/latest.json")
        else:
            # An interrupted or partial run keeps its results, but not as the ones the docs show.
            log(f"partial run: wrote {out.relative_to(ROOT)} only")
        subprocess.run(["rm", "-rf", str(work)], check=False)
    if full and not args.no_report:
        report()
    log(f"done in {time.time() - started:.0f} s")
    return 0


def _pypi_systems(
    cargohold: peers.Service | None,
    pypiserver: peers.Service | None,
    devpi: peers.Service | None,
    work: Path,
) -> list[pypi.PypiSystem]:
    def missing(name: str) -> pypi.PypiSystem:
        return pypi.PypiSystem(name, peers.Service(name, "", None, work), "", lambda _: "", "", "")

    systems = []
    if cargohold:
        base = f"{cargohold.url}/api/v1/acme"
        systems.append(
            pypi.PypiSystem(
                "cargohold",
                cargohold,
                f"{base}/public/python/simple/",
                lambda rep: f"{base}/{'public' if rep is None else f'up{rep}'}/python/",
                cargohold.extra["user"],
                cargohold.extra["password"],
            )
        )
    else:
        systems.append(missing("cargohold"))
    if pypiserver:
        pypi_url = pypiserver.url
        systems.append(
            pypi.PypiSystem(
                "pypiserver",
                pypiserver,
                f"{pypi_url}/simple/",
                lambda _rep: f"{pypi_url}/",
                "bench",
                "bench",
                packages_dir=Path(pypiserver.extra["packages"]),
            )
        )
    else:
        systems.append(missing("pypiserver"))
    if devpi:
        devpi_url, user = devpi.url, devpi.extra["user"]
        systems.append(
            pypi.PypiSystem(
                "devpi",
                devpi,
                f"{devpi_url}/{user}/dev/+simple/",
                lambda rep: f"{devpi_url}/{user}/{'dev' if rep is None else f'up{rep}'}/",
                user,
                devpi.extra["password"],
                headers={"X-Devpi-Auth": devpi.extra["auth_header"]},
            )
        )
    else:
        systems.append(missing("devpi"))
    return systems


def report() -> None:
    """The docs are drawn by the tools venv, which has matplotlib; without it, the table only."""
    python = CACHE / "tools" / "bin" / "python"
    if not python.exists():
        python = Path(sys.executable)
    subprocess.run([str(python), str(ROOT / "bench" / "report.py")], check=False)


if __name__ == "__main__":
    sys.exit(main())
