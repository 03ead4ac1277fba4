"""`flask bootstrap`, as `make run` uses it: first start generates the admin password once."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import pty
import stat
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

from app.access import passwords
from app.config import Settings
from tests.support.client import OCIClient
from tests.support.server import make_server

ROOT = Path(__file__).resolve().parents[1]
FLASK = str(Path(sys.executable).parent / "flask")


def bootstrap_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARGOHOLD_")}
    env.update(FLASK_APP="wsgi", CARGOHOLD_DATA_DIR=str(data_dir), **extra)
    return env


def bootstrap(data_dir: Path, **extra: str) -> str:
    """Output to a pipe, as under systemd, docker or CI; with the usual umask 022."""
    out = subprocess.run(
        [FLASK, "bootstrap"],
        cwd=ROOT,
        env=bootstrap_env(data_dir, **extra),
        capture_output=True,
        text=True,
        check=True,
        umask=0o022,
    )
    return out.stdout


def bootstrap_on_a_terminal(data_dir: Path) -> str:
    controller, terminal = pty.openpty()
    try:
        subprocess.run(
            [FLASK, "bootstrap"],
            cwd=ROOT,
            env=bootstrap_env(data_dir),
            stdin=subprocess.DEVNULL,
            stdout=terminal,
            stderr=subprocess.PIPE,
            check=True,
        )
    finally:
        os.close(terminal)
    out = b""
    with contextlib.suppress(OSError):  # EIO once everything written is read
        while chunk := os.read(controller, 4096):
            out += chunk
    os.close(controller)
    return out.decode()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_generated_password_stays_out_of_logs(tmp_path):
    first = bootstrap(tmp_path)
    password_file = tmp_path / "admin-password"
    password = password_file.read_text().strip()
    assert password not in first
    assert f"Generated a password for admin, readable only by this user in {password_file}" in first
    assert mode(password_file) == 0o600
    second = bootstrap(tmp_path)
    assert "Generated" not in second
    assert "Ready: organisation 'acme', registry acme/main" in second
    assert mode(tmp_path / "token-key") == 0o600


def test_generated_password_is_shown_on_a_terminal_once(tmp_path):
    first = bootstrap_on_a_terminal(tmp_path)
    password = (tmp_path / "admin-password").read_text().strip()
    assert f"Generated password for admin: {password}" in first
    assert "Generated" not in bootstrap_on_a_terminal(tmp_path)


def test_generated_passwords_never_start_with_a_dash(monkeypatch):
    """`twine -p -abc` or `podman login -p -abc` would read such a password as an option."""
    assert not any(passwords.generate_password(3).startswith("-") for _ in range(2000))
    drawn = iter(["-starts-with-a-dash", "Plain_and-safe"])
    fake = SimpleNamespace(token_urlsafe=lambda n: next(drawn))
    monkeypatch.setattr(passwords, "secrets", fake)
    assert passwords.generate_password() == "Plain_and-safe"


def test_data_folder_and_files_are_private(tmp_path):
    """The data folder 0700 and everything in it 0600: the database (password hashes), the
    signing key, the admin password and the blobs of private registries."""
    data = tmp_path / "data"
    bootstrap(data)
    server = make_server(data)
    server.start()
    try:
        client = OCIClient(server.url, "alice", server.users["alice"])
        client.push_image("acme/main/private", "v1", [b"secret layer", b"another layer"])
        # A chunked upload left open: its file sits in uploads/.
        assert client.request("POST", "/v2/acme/main/private/blobs/uploads/").status_code == 202
    finally:
        server.stop()
    assert mode(data) == 0o700
    written = [p for p in data.rglob("*") if p.name != "server.log"]  # server.log is the test's
    assert {p.name for p in written} >= {"cargohold.db", "admin-password", "token-key"}
    assert len([p for p in written if "blobs" in p.parts and p.is_file()]) >= 4
    assert any("uploads" in p.parts and p.is_file() for p in written)
    assert {str(p): oct(mode(p)) for p in written if mode(p) & 0o077} == {}


def test_bootstrap_names_come_from_the_environment(tmp_path):
    out = bootstrap(
        tmp_path,
        CARGOHOLD_ADMIN_USER="root",
        CARGOHOLD_ADMIN_PASSWORD="a-long-password",
        CARGOHOLD_BOOTSTRAP_ORG="initech",
        CARGOHOLD_BOOTSTRAP_REGISTRY="builds",
    )
    assert "Generated password" not in out
    assert not (tmp_path / "admin-password").exists()
    assert "organisation 'initech', registry initech/builds, admin 'root'" in out


def _token_key_after(barrier, data_dir: str, answers) -> None:
    settings = Settings.from_env({"CARGOHOLD_DATA_DIR": data_dir})
    barrier.wait(timeout=30)
    try:
        answers.put(settings.resolved_token_key())
    except Exception as error:  # noqa: BLE001 - the test shows what went wrong
        answers.put(f"failed: {error!r}")


def test_processes_starting_together_agree_on_one_generated_token_key(tmp_path):
    """Replicas and gunicorn workers sharing a new data folder each start by reading the JWT
    key, generating it if missing: none may fail, read a half-written key, or keep its own."""
    forked = multiprocessing.get_context("fork")
    for round_ in range(20):
        data_dir, together = tmp_path / str(round_), 6
        barrier, answers = forked.Barrier(together), forked.Queue()
        starts = [
            forked.Process(
                target=_token_key_after, args=(barrier, str(data_dir), answers), daemon=True
            )
            for _ in range(together)
        ]
        for process in starts:
            process.start()
        try:
            keys = [answers.get(timeout=30) for _ in starts]
        finally:
            for process in starts:
                process.join(timeout=10)
                process.kill()  # a no-op for those that ended
        assert len(set(keys)) == 1 and len(keys[0]) >= 64, keys
        assert (data_dir / "token-key").read_text() == keys[0]
        assert [p.name for p in data_dir.iterdir()] == ["token-key"]
