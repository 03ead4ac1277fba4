"""Fixtures for the Python package tests: real twine, uv and pip against the loopback server."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.pypi import testdata as pinned
from tests.support.server import Server

BIN = Path(sys.executable).parent
# pip's and uv's own Accept headers for index pages, byte for byte.
PIP_ACCEPT = (
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, "
    "text/html; q=0.01"
)
UV_ACCEPT = (
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, "
    "text/html;q=0.01"
)
# The four dependencies of requests 2.32.3.
REQUESTS_CLOSURE = {"requests", "charset-normalizer", "idna", "urllib3", "certifi"}


@dataclass(frozen=True)
class Index:
    """One registry's Python endpoints as seen by one user."""

    server: Server
    org: str
    registry: str
    user: str | None = "alice"

    @property
    def base(self) -> str:
        return f"{self.server.url}/api/v1/{self.org}/{self.registry}/python"

    @property
    def upload_url(self) -> str:
        return self.base + "/"

    @property
    def simple(self) -> str:
        return self.base + "/simple/"

    @property
    def password(self) -> str:
        assert self.user is not None
        return self.server.users[self.user]

    @property
    def auth(self) -> tuple[str, str] | None:
        return (self.user, self.password) if self.user else None

    @property
    def index_url(self) -> str:
        """The --index-url pip and uv get, credentials inside as users write them."""
        if self.user is None:
            return self.simple
        return self.simple.replace("http://", f"http://{self.user}:{self.password}@", 1)

    def as_user(self, user: str | None) -> Index:
        return Index(self.server, self.org, self.registry, user)


def sha256sums() -> dict[str, str]:
    return pinned.locked()


@pytest.fixture(scope="session")
def testdata() -> Path:
    """The pinned wheels and sdists, fetched on first use (tests/pypi/testdata.py)."""
    return pinned.required(pinned.ensure, "Python test data")


@pytest.fixture(scope="session")
def dist_files(testdata) -> list[Path]:
    return pinned.files(testdata)


def clean_env(home: Path) -> dict[str, str]:
    """No user configuration, no cache and no index but the one on the command line."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PIP_", "UV_", "TWINE_", "PYTHON", "VIRTUAL_ENV"))
    }
    home.mkdir(parents=True, exist_ok=True)
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_CACHE_HOME=str(home / ".cache"),
        PIP_CONFIG_FILE=os.devnull,
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_NO_INPUT="1",
        PIP_NO_CACHE_DIR="1",
        UV_NO_CONFIG="1",
        UV_CACHE_DIR=str(home / "uv-cache"),
        UV_PYTHON_DOWNLOADS="never",
        UV_NO_PROGRESS="1",
        NO_COLOR="1",
    )
    return env


def run(
    cmd: list[str], env: dict[str, str], check: bool = True, **kw
) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, **kw)
    if check and proc.returncode != 0:
        pytest.fail(
            f"{' '.join(cmd[:3])} ... exited {proc.returncode}\n"
            f"stdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}"
        )
    return proc


def twine(index: Index, files: list[Path], env: dict[str, str], *extra: str, url: str = ""):
    return run(
        [
            str(BIN / "twine"),
            "upload",
            "--non-interactive",
            "--disable-progress-bar",
            "--repository-url",
            url or index.upload_url,
            f"--username={index.user or ''}",
            # One =-joined argument: a password starting with "-" is not read as an option.
            f"--password={index.password if index.user else ''}",
            *extra,
            *map(str, files),
        ],
        env,
        check=False,
    )


def uv_publish(
    index: Index,
    files: list[Path],
    env: dict[str, str],
    url: str = "",
    extra: tuple[str, ...] | list[str] = (),
):
    return run(
        [
            str(BIN / "uv"),
            "publish",
            "--publish-url",
            url or index.upload_url,
            f"--username={index.user or ''}",
            # One =-joined argument: a password starting with "-" is not read as an option.
            f"--password={index.password if index.user else ''}",
            *extra,
            *map(str, files),
        ],
        env,
        check=False,
    )


@pytest.fixture(scope="session")
def main_index(server) -> Index:
    return Index(server, "acme", "main")


@pytest.fixture(scope="session")
def second_index(server) -> Index:
    return Index(server, "acme", "second")


@pytest.fixture(scope="session")
def twine_uploaded(main_index, dist_files, tmp_path_factory) -> Index:
    """Every test-data file uploaded to acme/main with twine, at the URL without a slash."""
    env = clean_env(tmp_path_factory.mktemp("twine-home"))
    proc = twine(main_index, dist_files, env, url=main_index.base)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return main_index


def uv_names(files: list[Path], folder: Path) -> list[Path]:
    """uv publish skips files whose names are not in normalized form (zope.event-5.0...,
    MarkupSafe-...); the same bytes under the normalized name are what it would upload."""
    from packaging.utils import parse_sdist_filename, parse_wheel_filename

    staged = []
    for f in files:
        if f.name.endswith(".whl"):
            name, version, _, _ = parse_wheel_filename(f.name)
            rest = f.name.split("-", 2)[2]
            target = f"{name.replace('-', '_')}-{version}-{rest}"
        else:
            name, version = parse_sdist_filename(f.name)
            target = f"{name.replace('-', '_')}-{version}.tar.gz"
        link = folder / target
        link.symlink_to(f)
        staged.append(link)
    return staged


@pytest.fixture(scope="session")
def uv_published(second_index, dist_files, tmp_path_factory) -> Index:
    """Every test-data file uploaded to acme/second with uv publish."""
    home = tmp_path_factory.mktemp("uv-home")
    staged = uv_names(dist_files, tmp_path_factory.mktemp("uv-dist"))
    proc = uv_publish(second_index, staged, clean_env(home))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "skipping" not in proc.stderr, proc.stderr
    return second_index


@pytest.fixture(scope="session")
def build_tools(twine_uploaded, tmp_path_factory) -> Index:
    """setuptools and wheel in acme/main, so pip can build sdists' metadata from it alone."""
    import ensurepip

    from tests.pypi.dists import repack_installed

    setuptools = next((Path(ensurepip.__file__).parent / "_bundled").glob("setuptools-*.whl"))
    wheel = repack_installed("wheel", tmp_path_factory.mktemp("tools"))
    proc = twine(twine_uploaded, [setuptools, wheel], clean_env(tmp_path_factory.mktemp("t")))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return twine_uploaded


def make_venv(path: Path, env: dict[str, str]) -> Path:
    """A fresh virtualenv with the pip that ships with Python (no network)."""
    run([sys.executable, "-m", "venv", str(path)], env)
    return path / "bin" / "python"


@pytest.fixture
def home(tmp_path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def env(home) -> dict[str, str]:
    return clean_env(home)
