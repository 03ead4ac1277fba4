"""The administrator's `flask` commands, each group run in process against a fresh app."""

from __future__ import annotations

import pytest

from app import create_app
from app.config import Settings


@pytest.fixture
def cli(tmp_path):
    app = create_app(Settings(data_dir=tmp_path, admin_password="admin-password-for-cli"))
    runner = app.test_cli_runner()

    def run(*args: str, ok: bool = True) -> str:
        result = runner.invoke(args=list(args))
        assert (result.exit_code == 0) == ok, result.output
        return result.output

    run("bootstrap")
    return run


def test_every_group_is_registered(inprocess_app):
    names = set(inprocess_app.cli.list_commands(None))
    assert {"bootstrap", "user", "org", "registry", "robot", "token", "uploads"} <= names


def test_accounts_and_tenants(cli):
    assert "created user alice" in cli("user", "create", "alice", "--password", "a-long-password")
    assert "created organisation initech" in cli("org", "create", "initech", "--owner", "alice")
    cli("user", "create", "bob", "--password", "another-long-password")
    assert "bob is viewer of initech" in cli("org", "member", "initech", "bob", "--role", "viewer")
    assert "(public)" in cli("registry", "create", "initech", "prod", "--public")
    assert "bob is writer of initech/prod" in cli("registry", "grant", "initech", "prod", "bob")
    assert "created robot initech+ci" in cli("robot", "create", "initech", "ci")
    secret = cli("token", "create", "initech+ci", "deploy", "--scope", "read").strip()
    assert secret and " " not in secret


def test_refusals_are_one_line(cli):
    out = cli("org", "create", "nobody-owns", "--owner", "ghost", ok=False)
    assert "user 'ghost' does not exist" in out and "Traceback" not in out
    assert "does not exist" in cli("token", "create", "ghost", "t", ok=False)


def test_uploads_sweep(cli):
    assert "aborted 0 abandoned upload(s)" in cli("uploads", "sweep")
