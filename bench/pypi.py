"""PyPI measures: Cargohold's Python index against pypiserver and devpi, alternating runs."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import requests

from bench.common import Results, log
from bench.load import wrk
from bench.peers import Service, python_for_venvs
from tests.pypi import testdata

VENV_BIN = Path(sys.executable).parent
# requests 2.32.3 and its four dependencies, as wheels.
CLOSURE = ("requests-", "certifi-", "charset_normalizer-", "idna-", "urllib3-")
CLOSURE_NAMES = {"requests", "certifi", "charset_normalizer", "idna", "urllib3"}
NUMPY = "numpy-"
# pip's own Accept header for index pages, so each server answers what pip would get.
PIP_ACCEPT = (
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, "
    "text/html; q=0.01"
)


@dataclass
class PypiSystem:
    name: str
    service: Service
    simple: str  # the index pip and uv are pointed at
    upload: Callable[[int | None], str]  # upload URL: the main index, or run n's own index
    user: str
    password: str
    headers: dict[str, str] = field(default_factory=dict)  # for the bulk HTTP uploads
    packages_dir: Path | None = None  # pypiserver: the folder is the index

    @property
    def pid(self) -> int | None:
        return self.service.pid


def testdata_files() -> tuple[list[Path], Path]:
    # The Python package tests' pinned wheels, fetched into their cache on first use.
    folder = testdata.ensure()
    wheels = [f for f in testdata.files(folder) if f.name.endswith(".whl")]
    closure = [w for w in wheels if w.name.startswith(CLOSURE)]
    numpy = next(w for w in wheels if w.name.startswith(NUMPY))
    if len(closure) != len(CLOSURE):
        raise RuntimeError(f"the requests closure is not all in {folder}")
    return closure, numpy


def _clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PIP_", "UV_", "TWINE_", "VIRTUAL_ENV"))
    }
    env.update(
        PIP_CONFIG_FILE=os.devnull,
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring",
        UV_PYTHON_DOWNLOADS="never",
        **extra,
    )
    return env


def twine_upload(url: str, user: str, password: str, files: list[Path]) -> None:
    out = subprocess.run(
        [
            str(VENV_BIN / "twine"),
            "upload",
            "--non-interactive",
            "--disable-progress-bar",
            "--repository-url",
            url,
            f"--username={user}",
            # One =-joined argument: a password starting with "-" is not read as an option.
            f"--password={password}",
            *map(str, files),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=_clean_env(),
    )
    if out.returncode != 0:
        raise RuntimeError(f"twine: {(out.stdout + out.stderr).strip()[-500:]}")


# ---- the 5,000-project index ----------------------------------------------------------------


def tiny_sdist(name: str) -> tuple[str, bytes]:
    escaped = name.replace("-", "_")
    pkg_info = f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\nSummary: bench\n".encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for member, data in ((f"{escaped}-1.0/PKG-INFO", pkg_info), (f"{escaped}-1.0/x.py", b"")):
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return f"{escaped}-1.0.tar.gz", buf.getvalue()


def _post_sdist(s: requests.Session, system: PypiSystem, name: str) -> None:
    filename, data = tiny_sdist(name)
    fields = {
        ":action": "file_upload",
        "protocol_version": "1",
        "metadata_version": "2.1",
        "name": name,
        "version": "1.0",
        "filetype": "sdist",
        "pyversion": "source",
        "summary": "bench",
        "sha256_digest": hashlib.sha256(data).hexdigest(),
    }
    r = s.post(
        system.upload(None),
        data=fields,
        files={"content": (filename, data, "application/octet-stream")},
        headers=system.headers,
        timeout=120,
    )
    assert r.status_code in (200, 201), f"{r.status_code} {r.text[:200]}"


def seed(res: Results, systems: list[PypiSystem], projects: int) -> None:
    """The requests closure by twine, then `projects` tiny sdists: uploaded 8 at a time where
    uploading is the only way in, written to the folder for pypiserver, whose index is the
    folder."""
    closure, _ = testdata_files()
    rate = res.measure(
        "pypi_upload_rate",
        "pypi",
        f"upload {projects:,} tiny sdists, 8 clients",
        "uploads/s",
        True,
    )
    names = [f"benchpkg-{i:05d}" for i in range(projects)]
    for system in systems:
        if system.name in res.failures:
            continue
        try:
            twine_upload(system.upload(None), system.user, system.password, closure)
        except Exception as exc:  # noqa: BLE001
            log(f"  seed {system.name}: FAILED {exc}")
            res.failures[f"{system.name}:pypi"] = f"seeding the index failed: {exc}"[:500]
            continue
        if system.packages_dir is not None:
            for name in names:
                filename, data = tiny_sdist(name)
                (system.packages_dir / filename).write_bytes(data)
            rate.errors[system.name] = "not measured: packages written to its folder"
            continue

        def upload_all(system: PypiSystem = system) -> float:
            s = requests.Session()
            s.auth = (system.user, system.password) if not system.headers else None
            s.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=8))
            start = time.perf_counter()
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(lambda n: _post_sdist(s, system, n), names))
            return projects / (time.perf_counter() - start)

        res.run(rate, system.name, system.pid, upload_all)
        if system.name not in rate.values:
            res.failures[f"{system.name}:pypi"] = "seeding the index failed"


# ---- installs -------------------------------------------------------------------------------


def _installed(venv: Path) -> set[str]:
    site = next(venv.glob("lib/python*/site-packages"))
    return {p.name.split("-")[0].lower() for p in site.glob("*.dist-info")}


def _check_closure(venv: Path) -> None:
    missing = CLOSURE_NAMES - _installed(venv)
    if missing:
        raise RuntimeError(f"not installed: {', '.join(sorted(missing))}")


def _fresh_venv(work: Path, name: str) -> Path:
    """A new virtualenv with the interpreter's own pip (ensurepip), as `python -m venv` makes
    it. Made once and copied, since ensurepip costs seconds a time; pip then runs as
    `python -m pip`, which does not care that the folder moved."""
    template = work / "venv-template"
    if not template.exists():
        subprocess.run([python_for_venvs(), "-m", "venv", str(template)], check=True, timeout=300)
    venv = work / name
    shutil.rmtree(venv, ignore_errors=True)
    shutil.copytree(template, venv, symlinks=True)
    return venv


def pip_install(system: PypiSystem, work: Path) -> float:
    venv = _fresh_venv(work, f"pip-venv-{system.name}")
    start = time.perf_counter()
    out = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--no-cache-dir",
            "--disable-pip-version-check",
            "--index-url",
            system.simple,
            "requests",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=_clean_env(),
    )
    seconds = time.perf_counter() - start
    if out.returncode != 0:
        raise RuntimeError(f"pip: {(out.stdout + out.stderr).strip()[-500:]}")
    _check_closure(venv)
    shutil.rmtree(venv, ignore_errors=True)
    return seconds


def uv_install(system: PypiSystem, work: Path) -> float:
    venv = work / f"uv-venv-{system.name}"
    shutil.rmtree(venv, ignore_errors=True)
    uv = str(VENV_BIN / "uv")
    env = _clean_env()
    subprocess.run(
        [uv, "venv", "--no-config", "--quiet", "--python", python_for_venvs(), str(venv)],
        check=True,
        timeout=120,
        env=env,
    )
    start = time.perf_counter()
    out = subprocess.run(
        [
            uv,
            "pip",
            "install",
            "--no-config",
            "--no-cache",
            "--python",
            str(venv / "bin" / "python"),
            "--index-url",
            system.simple,
            "requests",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    seconds = time.perf_counter() - start
    if out.returncode != 0:
        raise RuntimeError(f"uv: {(out.stdout + out.stderr).strip()[-500:]}")
    _check_closure(venv)
    shutil.rmtree(venv, ignore_errors=True)
    return seconds


def installs(res: Results, systems: list[PypiSystem], reps: int, work: Path) -> None:
    pip_m = res.measure(
        "pip_install",
        "pypi",
        "pip install requests (+4 deps), fresh venv, no cache",
        "s",
        False,
    )
    uv_m = res.measure(
        "uv_install",
        "pypi",
        "uv pip install requests (+4 deps), fresh venv, no cache",
        "s",
        False,
    )
    for _ in range(reps):
        for system in systems:
            res.run(pip_m, system.name, system.pid, lambda system=system: pip_install(system, work))
        for system in systems:
            res.run(uv_m, system.name, system.pid, lambda system=system: uv_install(system, work))


# ---- simple pages and twine -----------------------------------------------------------------


def simple_pages(
    res: Results, systems: list[PypiSystem], reps: int, seconds: int, projects: int
) -> None:
    connections = 8
    pages = (
        ("project", "requests/", "simple page of one project (requests)"),
        ("root", "", f"simple root index, {projects:,} projects"),
    )
    for key, path, label in pages:
        m = res.measure(
            f"simple_{key}_rps",
            "pypi",
            f"{label}, {connections} connections (wrk)",
            "req/s",
            True,
            f"limit_static_rps_c{connections}",
        )
        p50 = res.measure(f"simple_{key}_p50", "pypi", f"{label}: p50 latency", "ms", False)
        served: dict[str, str] = {}
        for system in systems:
            if system.name in res.failures or f"{system.name}:pypi" in res.failures:
                continue
            try:
                r = requests.get(system.simple + path, headers={"Accept": PIP_ACCEPT}, timeout=60)
                assert r.status_code == 200, r.status_code
                served[system.name] = (
                    f"{r.headers.get('Content-Type', '?').split(';')[0]}, {len(r.content):,} bytes"
                )
            except Exception as exc:  # noqa: BLE001
                m.errors[system.name] = f"page check failed: {exc}"
        m.notes["served"] = served
        for _ in range(reps):
            for system in systems:
                if system.name not in served:
                    continue
                found: dict[str, float] = {}

                def run(url: str = system.simple + path, found=found) -> float:
                    load = wrk(url, connections, seconds, {"Accept": PIP_ACCEPT})
                    if load.bad:
                        raise RuntimeError(f"{load.bad} failed requests of {load.requests}")
                    found["p50"] = load.p50_ms
                    return load.rps

                if res.run(m, system.name, system.pid, run) is not None:
                    p50.add(system.name, found["p50"])


def twine_numpy(res: Results, systems: list[PypiSystem], reps: int) -> None:
    """Each run uploads into an index of its own (pypiserver: the file is removed after the run),
    since every server refuses a filename it already has."""
    _, numpy = testdata_files()
    size = numpy.stat().st_size
    m = res.measure(
        "twine_numpy",
        "pypi",
        f"twine upload of {numpy.name.split('-')[0]} wheel ({size / 1e6:.0f} MB)",
        "s",
        False,
    )
    for rep in range(reps):
        for system in systems:

            def run(system: PypiSystem = system, rep: int = rep) -> float:
                start = time.perf_counter()
                twine_upload(system.upload(rep), system.user, system.password, [numpy])
                seconds = time.perf_counter() - start
                if system.packages_dir is not None:
                    (system.packages_dir / numpy.name).unlink()
                return seconds

            res.run(m, system.name, system.pid, run)
