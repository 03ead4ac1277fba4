"""Real OCI clients, each with its own configuration and storage under a temporary folder.

Nothing a client writes lands in the user's home: credentials, caches and image storage are
all redirected, so the tests can run beside a developer's own podman or helm setup.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import require_tool

pytestmark = pytest.mark.clients


@dataclass
class Clients:
    """Runs a client against the test server as one user, with isolated configuration."""

    server: object
    home: Path
    user: str

    @property
    def password(self) -> str:
        return self.server.users[self.user]

    @property
    def host(self) -> str:
        return self.server.host

    @property
    def env(self) -> dict[str, str]:
        h = self.home
        return {
            **os.environ,
            "HOME": str(h),
            "XDG_CONFIG_HOME": str(h / "config"),
            "XDG_RUNTIME_DIR": str(h / "run"),
            "REGISTRY_AUTH_FILE": str(h / "auth.json"),
            "DOCKER_CONFIG": str(h / "docker"),
            "HELM_CACHE_HOME": str(h / "helm/cache"),
            "HELM_CONFIG_HOME": str(h / "helm/config"),
            "HELM_DATA_HOME": str(h / "helm/data"),
            "HELM_REGISTRY_CONFIG": str(h / "helm/registry.json"),
            "CONTAINERS_STORAGE_CONF": str(h / "storage.conf"),
        }

    def run(self, *args: str, check: bool = True, cwd: Path | None = None, timeout: int = 300):
        require_tool(args[0])
        proc = subprocess.run(
            list(args),
            env=self.env,
            cwd=cwd or self.home,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"{' '.join(args)} exited {proc.returncode}\n"
                f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
            )
        return proc

    # Containers tools (podman, buildah, skopeo) share storage.conf and the auth file.
    def podman(self, *args: str, **kw):
        # As root, podman keeps its runtime state in /run/libpod, which every podman on the host
        # shares and `podman system reset` deletes: another run's reset would pull it from under
        # this one. Each Clients has its own.
        return self.run("podman", "--tmpdir", str(self.home / "libpod"), *args, **kw)

    def buildah(self, *args: str, **kw):
        return self.run("buildah", *args, **kw)

    def skopeo(self, *args: str, **kw):
        return self.run("skopeo", *args, **kw)

    def oras(self, *args: str, **kw):
        config = str(self.home / "oras.json")
        if args[0] == "cp":  # cp names its two ends' options separately
            flags = ["--from-plain-http", "--to-plain-http"]
            flags += ["--from-registry-config", config, "--to-registry-config", config]
        else:
            flags = ["--plain-http", "--registry-config", config]
        return self.run("oras", *args, *flags, **kw)

    def crane(self, *args: str, **kw):
        return self.run("crane", *args, "--insecure", **kw)

    def helm(self, *args: str, **kw):
        return self.run("helm", *args, **kw)


def make_clients(server, home: Path, user: str) -> Clients:
    for sub in ("config", "run", "docker", "helm", "storage", "runroot"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    os.chmod(home / "run", 0o700)
    driver = "overlay" if _overlay_works() else "vfs"
    (home / "storage.conf").write_text(
        "[storage]\n"
        f'driver = "{driver}"\n'
        f'graphroot = "{home / "storage"}"\n'
        f'runroot = "{home / "runroot"}"\n'
    )
    # docker's login goes through its daemon, which does not run here, so its credentials are
    # written as `docker login` would; crane reads the same file. Every other client logs in
    # with its own login command in its tests.
    token = base64.b64encode(f"{user}:{server.users[user]}".encode()).decode()
    (home / "docker/config.json").write_text(json.dumps({"auths": {server.host: {"auth": token}}}))
    return Clients(server=server, home=home, user=user)


def _overlay_works() -> bool:
    # overlay needs root (or fuse-overlayfs); vfs always works, only slower.
    return os.geteuid() == 0


def release(c: Clients) -> None:
    """Unmount and drop the containers storage, so the temporary folder can be removed."""
    if shutil.which("podman") and (c.home / "storage").exists():
        c.podman("system", "reset", "--force", check=False)
    # The overlay driver bind-mounts its own folder, and a reset leaves that mount behind.
    overlay = c.home / "storage" / "overlay"
    if os.path.ismount(overlay):
        subprocess.run(["umount", "-l", str(overlay)], check=False)


@pytest.fixture(scope="module")
def clients(server, tmp_path_factory):
    c = make_clients(server, tmp_path_factory.mktemp("alice-clients"), "alice")
    yield c
    release(c)


@pytest.fixture(scope="module")
def clients_as(server, tmp_path_factory):
    made: list[Clients] = []

    def make(user: str) -> Clients:
        made.append(make_clients(server, tmp_path_factory.mktemp(f"{user}-clients"), user))
        return made[-1]

    yield make
    for c in made:
        release(c)
