"""A real Cargohold served by gunicorn on a loopback port, for service and client tests."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import requests

from app.access.passwords import generate_password

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def child_pids(pid: int) -> list[int]:
    """Direct children of a process (gunicorn's workers), from /proc."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry))
    return out


def complete_lines(path: Path) -> list[str]:
    """A log's complete lines: its writer may be appending the next one as we read."""
    text = path.read_text()
    return text[: text.rfind("\n") + 1].splitlines()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    data_dir: Path
    port: int
    admin_password: str
    env: dict[str, str]
    proc: subprocess.Popen | None = None
    log_path: Path | None = None
    users: dict[str, str] = field(default_factory=dict)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def replica(self) -> Server:
        """Another server, not started, on this one's database and store, as replicas run."""
        return replace(self, port=free_port(), proc=None, log_path=None)

    def flask(self, *args: str) -> str:
        out = subprocess.run(
            [str(BIN / "flask"), *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout

    def app(self):
        """The application as the server's own `flask` commands build it, from its environment
        (the object store's client takes its credentials from the process's, when made)."""
        from app import create_app
        from app.config import Settings

        saved = os.environ.copy()
        os.environ.update(self.env)
        try:
            return create_app(Settings.from_env())
        finally:
            os.environ.clear()
            os.environ.update(saved)

    def database_url(self) -> str:
        return (
            self.env.get("CARGOHOLD_DATABASE_URL") or f"sqlite:///{self.data_dir / 'cargohold.db'}"
        )

    def sql(self, statement: str, *params) -> list[tuple]:
        """Run SQL against the server's database (tests use it to age rows, never to set up
        what the product's own interfaces can)."""
        from sqlalchemy import create_engine, text

        url = self.database_url()
        parts = statement.split("?")
        named = parts[0] + "".join(f":p{i}{part}" for i, part in enumerate(parts[1:]))
        engine = create_engine(url)
        try:
            with engine.begin() as conn:
                result = conn.execute(text(named), {f"p{i}": v for i, v in enumerate(params)})
                return [tuple(row) for row in result] if result.returns_rows else []
        finally:
            engine.dispose()

    def start(self, workers: int = 2) -> None:
        self.log_path = self.data_dir / "server.log"
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child process owns it
        self.proc = subprocess.Popen(
            # Served exactly as `make run` and containers serve it.
            [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "wsgi:app"],
            cwd=ROOT,
            env={
                "CARGOHOLD_ACCESS_LOG": "",
                **self.env,
                "CARGOHOLD_HOST": "127.0.0.1",
                "CARGOHOLD_PORT": str(self.port),
                "CARGOHOLD_WORKERS": str(workers),
            },
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-2000:]}")
            try:
                requests.get(f"{self.url}/v2/", timeout=5)
            except requests.RequestException:
                time.sleep(0.1)
                continue
            # The first worker answers while the master may still be forking the others (the
            # application is preloaded): tests that count or signal workers need them all.
            while len(child_pids(self.proc.pid)) < workers and time.monotonic() < deadline:
                time.sleep(0.05)
            return
        raise RuntimeError("server did not start within 60s")

    def kill(self) -> None:
        """SIGKILL the whole server, workers included: no chance to clean up. The master first,
        or it would fork a worker in place of a killed one, which would outlive the test."""
        for pid in [self.proc.pid, *child_pids(self.proc.pid)]:
            with contextlib.suppress(ProcessLookupError):  # a worker orphaned may be gone
                os.kill(pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def make_server(data_dir: Path, extra_env: dict[str, str] | None = None) -> Server:
    """Bootstrap a data folder with the tenants tests rely on, and return an unstarted server."""
    password = generate_password(12)
    env = {
        **os.environ,
        "FLASK_APP": "wsgi",
        "CARGOHOLD_DATA_DIR": str(data_dir),
        "CARGOHOLD_ADMIN_USER": "admin",
        "CARGOHOLD_ADMIN_PASSWORD": password,
        "CARGOHOLD_BOOTSTRAP_ORG": "acme",
        "CARGOHOLD_BOOTSTRAP_REGISTRY": "main",
        **(extra_env or {}),
    }
    server = Server(data_dir=data_dir, port=free_port(), admin_password=password, env=env)
    server.flask("bootstrap")
    seed_tenants(server)
    return server


@contextmanager
def running_server(
    data_dir: Path, extra_env: dict[str, str] | None = None, workers: int = 2
) -> Iterator[Server]:
    """A started server with the seeded tenants on the backend CARGOHOLD_TEST_BACKEND names,
    `extra_env` over it; stopped, and its backend's database and objects removed, on exit."""
    # Imported here: tests.support.services imports this module.
    from tests.support.services import Backend

    backend = Backend()
    try:
        server = make_server(data_dir, extra_env={**backend.env(), **(extra_env or {})})
        try:
            server.start(workers=workers)
            yield server
        finally:
            server.stop()
    finally:
        backend.cleanup()


@contextmanager
def no_traceback_logged(server: Server) -> Iterator[None]:
    """Fails when the server logged a traceback while the block ran."""
    assert server.log_path is not None
    start = server.log_path.stat().st_size
    yield
    with open(server.log_path, "rb") as log:
        log.seek(start)
        added = log.read().decode(errors="replace")
    assert "Traceback" not in added, added[-3000:]


def login_throttle(per_account: int, per_address: int, window: int = 60) -> dict[str, str]:
    """Environment for a server that throttles failed logins: so many failures per account and
    per client address within `window` seconds."""
    return {
        "CARGOHOLD_LOGIN_MAX_FAILURES": str(per_account),
        "CARGOHOLD_LOGIN_MAX_FAILURES_PER_ADDRESS": str(per_address),
        "CARGOHOLD_LOGIN_WINDOW": str(window),
    }


def seed_tenants(server: Server) -> None:
    """acme (admin, alice writer, victor viewer) and other (mallory), with public registries."""
    saved = os.environ.copy()
    os.environ.update(server.env)
    try:
        from app import create_app
        from app.access import tenancy
        from app.config import Settings
        from app.models.transaction import unit_of_work

        app = create_app(Settings.from_env())
        with app.app_context(), unit_of_work():
            server.users["admin"] = server.admin_password
            for name in ("alice", "victor", "mallory"):
                pw = generate_password(12)
                tenancy.create_user(name, pw)
                server.users[name] = pw
            tenancy.set_member("acme", "alice", "writer")
            tenancy.set_member("acme", "victor", "viewer")
            tenancy.create_registry("acme", "public", public=True)
            tenancy.create_registry("acme", "second")
            mallory = tenancy.find_user("mallory")
            tenancy.create_org("other", mallory)
            tenancy.create_registry("other", "private")
            tenancy.create_registry("other", "public", public=True)
    finally:
        os.environ.clear()
        os.environ.update(saved)
