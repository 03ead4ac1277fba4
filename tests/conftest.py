from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.support.client import OCIClient
from tests.support.inprocess import BASE_URL, session_for
from tests.support.server import Server, make_server
from tests.support.services import Backend

IN_CI = os.environ.get("CI") == "true"
# Where scripts/install-tools.sh puts the Go-built clients; searched even when not on PATH.
TOOLS_BIN = Path(os.environ.get("CARGOHOLD_TOOLS", Path.home() / ".cache/cargohold/tools")) / "bin"
os.environ["PATH"] = f"{TOOLS_BIN}{os.pathsep}{os.environ.get('PATH', '')}"


def require_tool(name: str) -> str:
    """A missing client fails in CI (the install script must provide it) and skips elsewhere."""
    path = shutil.which(name)
    if path:
        return path
    if IN_CI:
        pytest.fail(f"{name} is not installed; scripts/install-tools.sh must install it")
    pytest.skip(f"{name} is not installed (run scripts/install-tools.sh)")


@pytest.fixture(scope="session")
def server(tmp_path_factory) -> Server:
    backend = Backend()
    # The CI identity tests run their OIDC issuers on loopback, which must be listed. Every
    # test reaches this server from 127.0.0.1: the wrong passwords of all modules together must
    # not use up one address's budget (the throttle tests run servers of their own).
    env = {
        **backend.env(),
        "CARGOHOLD_OIDC_ISSUERS": "http://127.0.0.1:*",
        "CARGOHOLD_LOGIN_MAX_FAILURES_PER_ADDRESS": "100000",
    }
    srv = make_server(tmp_path_factory.mktemp("registry"), extra_env=env)
    srv.start()
    yield srv
    srv.stop()
    backend.cleanup()


@pytest.fixture
def admin(request) -> OCIClient:
    """The site admin over loopback HTTP; in process for tests marked `inprocess`."""
    if request.node.get_closest_marker("inprocess"):
        return request.getfixturevalue("inprocess_admin")
    server = request.getfixturevalue("server")
    return OCIClient(server.url, "admin", server.admin_password)


@pytest.fixture
def client_for(server):
    def make(user: str | None) -> OCIClient:
        if user is None:
            return OCIClient(server.url)
        return OCIClient(server.url, user, server.users[user])

    return make


@pytest.fixture(scope="session")
def inprocess_app(tmp_path_factory):
    """A bootstrapped app in this process, on the backend CARGOHOLD_TEST_BACKEND names, for
    tests of the API's logic where a loopback server adds nothing."""
    from app import create_app
    from app.config import Settings

    backend = Backend()
    env = {
        "CARGOHOLD_DATA_DIR": str(tmp_path_factory.mktemp("inprocess")),
        "CARGOHOLD_ADMIN_PASSWORD": INPROCESS_ADMIN_PASSWORD,
        **backend.env(),
    }
    with pytest.MonkeyPatch.context() as mp:
        # The S3 store finds its credentials in the standard AWS chain, as in production.
        for key in [k for k in env if k.startswith("AWS_")]:
            mp.setenv(key, env.pop(key))
        app = create_app(Settings.from_env(env))
        result = app.test_cli_runner().invoke(args=["bootstrap"])
        assert result.exit_code == 0, result.output
        yield app
        with app.app_context():
            from app.models import db

            db.session.remove()
            db.engine.dispose()
    backend.cleanup()


INPROCESS_ADMIN_PASSWORD = "in-process-admin-password"


@pytest.fixture
def test_client(inprocess_app):
    return inprocess_app.test_client()


@pytest.fixture
def inprocess_admin(inprocess_app) -> OCIClient:
    """`admin`, talking to the in-process app through Flask's test client."""
    client = OCIClient(BASE_URL, "admin", INPROCESS_ADMIN_PASSWORD)
    session_for(inprocess_app, client.session)
    return client
