"""The wheels and sdists the Python package tests upload: pinned by SHA-256 in testdata.lock,
fetched once with `pip download` into a cache shared by every checkout on the machine.

CARGOHOLD_TESTDATA_CACHE moves the cache (its `python/` folder holds the files);
CARGOHOLD_PYTHON_TESTDATA names a folder already holding some of them, copied from when the
hashes match. Run `python -m tests.pypi.testdata` to fill the cache ahead of a test run.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from packaging.utils import parse_sdist_filename, parse_wheel_filename

LOCK = Path(__file__).with_name("testdata.lock")


class MissingTestData(RuntimeError):
    """A pinned file could not be fetched or did not match its hash."""


def cache_dir() -> Path:
    parent = os.environ.get("CARGOHOLD_TESTDATA_CACHE") or Path.home() / ".cache/cargohold/testdata"
    return Path(parent) / "python"


def locked() -> dict[str, str]:
    """filename -> sha256 of every pinned file."""
    return read_lock(LOCK)


def read_lock(path: Path) -> dict[str, str]:
    """name -> sha256 of every line of a lock file in sha256sum's format."""
    sums = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            digest, name = line.split()
            sums[name.lstrip("*")] = digest
    return sums


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _intact(path: Path, digest: str) -> bool:
    return path.is_file() and sha256(path) == digest


@contextlib.contextmanager
def _exclusive(folder: Path) -> Iterator[None]:
    """One filler at a time: several test runs on one machine share the cache."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _copy_from_seed(seed: Path, cache: Path, wanted: dict[str, str]) -> None:
    for name, digest in wanted.items():
        if _intact(seed / name, digest):
            tmp = cache / f".{name}.part"
            shutil.copyfile(seed / name, tmp)
            os.replace(tmp, cache / name)


def _pip_options(filename: str) -> tuple[str, ...]:
    """What makes `pip download` pick exactly this file: its kind and, for a binary wheel,
    the interpreter, ABI and platforms in its name (not the running interpreter's)."""
    if not filename.endswith(".whl"):
        return ("--no-binary", parse_sdist_filename(filename)[0])
    tags = parse_wheel_filename(filename)[3]
    if all(t.platform == "any" for t in tags):
        return ("--only-binary", ":all:")
    options = ["--only-binary", ":all:"]
    (interpreter,) = {t.interpreter for t in tags}
    (abi,) = {t.abi for t in tags}
    options += ["--implementation", interpreter[:2], "--python-version", interpreter[2:]]
    options += ["--abi", abi]
    for platform in sorted({t.platform for t in tags}):
        options += ["--platform", platform]
    return tuple(options)


def _requirement(filename: str, digest: str) -> str:
    if filename.endswith(".whl"):
        name, version, _, _ = parse_wheel_filename(filename)
    else:
        name, version = parse_sdist_filename(filename)
    return f"{name}=={version} --hash=sha256:{digest}"


def _download(cache: Path, wanted: dict[str, str]) -> None:
    """One `pip download` per set of options; hash-checking mode makes pip choose, among a
    release's files, the one whose hash is pinned, and refuse anything else."""
    groups: dict[tuple[str, ...], dict[str, str]] = {}
    for name, digest in wanted.items():
        groups.setdefault(_pip_options(name), {})[name] = digest
    for options, files in groups.items():
        with tempfile.TemporaryDirectory(dir=cache, prefix=".pip-") as tmp:
            reqs = Path(tmp) / "requirements.txt"
            reqs.write_text("".join(_requirement(n, d) + "\n" for n, d in files.items()))
            out = Path(tmp) / "out"
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--require-hashes"]
            cmd += ["--disable-pip-version-check", "--progress-bar", "off", *options]
            proc = subprocess.run(
                [*cmd, "-d", str(out), "-r", str(reqs)], capture_output=True, text=True
            )
            if proc.returncode != 0:
                raise MissingTestData(
                    f"pip download failed ({proc.returncode}):\n{proc.stdout[-2000:]}"
                    f"\n{proc.stderr[-2000:]}"
                )
            for name, digest in files.items():
                if not _intact(out / name, digest):
                    raise MissingTestData(f"pip download did not yield {name} ({digest})")
                os.replace(out / name, cache / name)


def ensure(seed: Path | None = None, wanted: dict[str, str] | None = None) -> Path:
    """The cache folder, holding every pinned file (or every `wanted` one) with its hash."""
    cache = cache_dir()
    pinned = locked() if wanted is None else wanted
    if seed is None and os.environ.get("CARGOHOLD_PYTHON_TESTDATA"):
        seed = Path(os.environ["CARGOHOLD_PYTHON_TESTDATA"])
    with _exclusive(cache):
        missing = {n: d for n, d in pinned.items() if not _intact(cache / n, d)}
        if missing and seed is not None and seed.is_dir():
            _copy_from_seed(seed, cache, missing)
            missing = {n: d for n, d in missing.items() if not _intact(cache / n, d)}
        if missing:
            _download(cache, missing)
    return cache


def files(folder: Path) -> list[Path]:
    """The pinned files in a filled folder, in a stable order."""
    return [folder / name for name in sorted(locked())]


if __name__ == "__main__":
    print(ensure())


def required(fetch: Callable[[], Path], what: str) -> Path:
    """What `fetch` brings, for a test: data that cannot be had fails the test under CI=true
    (nothing may skip there) and skips it elsewhere, as `tests.conftest.require_tool` does."""
    import pytest

    try:
        return fetch()
    except MissingTestData as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{what} could not be fetched: {exc}")
        pytest.skip(f"{what} could not be fetched: {exc}")
