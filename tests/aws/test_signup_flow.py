"""The whole sign-up path against a real Cargohold with CARGOHOLD_IDENTITY=cognito:

    Cognito sign-up and confirmation -> the PostConfirmation trigger -> SQS -> `python -m worker`
    -> the user exists -> podman and twine sign in with the Cognito password and push

then bearer tokens of the pool on /api/v1, and everything that must be refused.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid

import jwt
import pytest
import requests

from lambda_signup import handler as trigger
from tests.aws.signup_events import Context, post_confirmation
from tests.aws.test_cognito_identity import resign
from tests.aws.test_worker import wait_for_log
from tests.clients.conftest import make_clients, release
from tests.pypi.conftest import clean_env, run
from tests.pypi.dists import make_wheel
from tests.support.moto import create_pool, create_queues
from tests.support.server import BIN, ROOT, make_server
from tests.support.services import Backend

PASSWORD = "Corr3ct-horse-battery"
TLS = "--tls-verify=false"


@pytest.fixture(scope="module")
def pool(moto):
    return create_pool(moto)


@pytest.fixture(scope="module")
def queues(moto):
    return create_queues(moto)


@pytest.fixture(scope="module")
def server(tmp_path_factory, pool):
    backend = Backend()
    # The backend's S3 keys win: moto takes any, SeaweedFS only its own.
    srv = make_server(
        tmp_path_factory.mktemp("cognito-registry"), {**pool.server_env(), **backend.env()}
    )
    srv.start()
    yield srv
    srv.stop()
    backend.cleanup()


@pytest.fixture(scope="module")
def signed_up(server, pool, queues, moto, tmp_path_factory):
    """A person signs up and confirms; the trigger publishes; the worker makes the user."""
    username = f"carol{uuid.uuid4().hex[:6]}"
    sub = pool.sign_up(username, PASSWORD, f"{username}@example.com")
    event = post_confirmation(pool, username)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SIGNUP_QUEUE_URL", queues.url)
        mp.setenv("AWS_ENDPOINT_URL_SQS", moto.url)
        mp.setattr(trigger, "_sqs", None)
        assert trigger.handler(event, Context()) is event

    log_path = tmp_path_factory.mktemp("worker") / "worker.log"
    env = {
        **server.env,
        "CARGOHOLD_SIGNUP_QUEUE_URL": queues.url,
        "CARGOHOLD_SQS_ENDPOINT": moto.url,
        "CARGOHOLD_WORKER_WAIT": "1",
        "CARGOHOLD_LOG_FORMAT": "json",
    }
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "worker"], cwd=ROOT, env=env, stdout=log, stderr=log
        )
    try:
        wait_for_log(log_path, "sign-up applied", proc)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    server.users[username] = PASSWORD
    return username, sub


def bearer(server, token: str) -> requests.Response:
    return requests.get(
        f"{server.url}/api/v1/user", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )


def test_the_worker_made_the_user_linked_to_the_pool(server, signed_up):
    username, sub = signed_up
    ((name, linked, password_hash),) = server.sql(
        "SELECT username, cognito_sub, password_hash FROM users WHERE cognito_sub = ?", sub
    )
    assert (name, linked, password_hash) == (username, sub, None)
    r = requests.get(f"{server.url}/api/v1/user", auth=(username, PASSWORD), timeout=30)
    assert r.status_code == 200, r.text
    assert [o["name"] for o in r.json()["organisations"]] == [username]


@pytest.mark.clients
def test_podman_logs_in_with_the_cognito_password_and_pushes(
    server, signed_up, tmp_path_factory, tmp_path
):
    username, _ = signed_up
    c = make_clients(server, tmp_path_factory.mktemp("carol-clients"), username)
    try:
        c.podman("login", TLS, "-u", username, "-p", PASSWORD, c.host)
        ref = f"{c.host}/{username}/main/hello:1"
        (tmp_path / "hello.txt").write_text("signed up through Cognito\n")
        (tmp_path / "Containerfile").write_text("FROM scratch\nCOPY hello.txt /hello.txt\n")
        c.podman("build", "-t", ref, str(tmp_path))
        c.podman("push", TLS, ref)
        c.podman("rmi", "-f", ref)
        c.podman("pull", TLS, ref)
        wrong = c.podman("login", TLS, "-u", username, "-p", "Wr0ng-password", c.host, check=False)
        assert wrong.returncode != 0 and "invalid username/password" in wrong.stderr
    finally:
        release(c)


def test_twine_uploads_with_the_cognito_password(server, signed_up, tmp_path):
    username, _ = signed_up
    name = f"carolpkg{uuid.uuid4().hex[:6]}"
    wheel = make_wheel(tmp_path, name, "1.0")
    url = f"{server.url}/api/v1/{username}/main/python/"
    env = clean_env(tmp_path / "home")
    cmd = [str(BIN / "twine"), "upload", "--non-interactive", "--disable-progress-bar"]
    up = run([*cmd, "--repository-url", url, "-u", username, "-p", PASSWORD, str(wheel)], env)
    assert up.returncode == 0
    r = requests.get(f"{url}simple/{name}/", auth=(username, PASSWORD), timeout=30)
    assert r.status_code == 200 and wheel.name in r.text
    bad = run(
        [*cmd, "--repository-url", url, "-u", username, "-p", "nope-nope", str(wheel)],
        env,
        check=False,
    )
    assert bad.returncode != 0


def test_pool_tokens_are_bearer_credentials_on_api_v1(server, signed_up, pool):
    username, _ = signed_up
    tokens = pool.tokens(username, PASSWORD)
    for kind in ("IdToken", "AccessToken"):
        r = bearer(server, tokens[kind])
        assert r.status_code == 200, r.text
        assert r.json()["username"] == username


def test_bad_tokens_are_refused_on_api_v1(server, signed_up, pool, moto):
    username, _ = signed_up
    token = pool.tokens(username, PASSWORD)["IdToken"]
    past = int(time.time()) - 7200
    other = create_pool(moto)
    other.sign_up(username, PASSWORD, "x@example.com")
    header, payload, signature = token.split(".")
    claims = jwt.decode(token, options={"verify_signature": False})
    forged = jwt.encode({**claims, "cognito:username": "admin"}, "x" * 32, algorithm="HS256")
    refused = {
        "expired": resign(token, iat=past, exp=past + 3600),
        "tampered": f"{header}.{resign(token, sub='someone-else').split('.')[1]}.{signature}",
        "another pool": other.tokens(username, PASSWORD)["IdToken"],
        "hmac-signed": forged,
        "garbage": "not.a.token",
    }
    for why, bad in refused.items():
        r = bearer(server, bad)
        assert r.status_code == 401, why
        assert r.json()["errors"][0]["code"] == "UNAUTHORIZED", why


def test_the_local_break_glass_administrator_still_signs_in(server, signed_up):
    r = requests.get(f"{server.url}/api/v1/user", auth=("admin", server.admin_password), timeout=30)
    assert r.status_code == 200 and r.json()["username"] == "admin"
    # Local accounts made before Cognito keep their local passwords too.
    r = requests.get(f"{server.url}/api/v1/user", auth=("alice", server.users["alice"]), timeout=30)
    assert r.status_code == 200


def test_the_admin_group_maps_to_site_administrator(server, signed_up, pool):
    username, sub = signed_up
    pool.cognito.admin_add_user_to_group(
        UserPoolId=pool.pool_id, Username=username, GroupName=pool.admin_group
    )
    assert bearer(server, pool.tokens(username, PASSWORD)["AccessToken"]).status_code == 200
    ((admin,),) = server.sql("SELECT is_site_admin FROM users WHERE cognito_sub = ?", sub)
    assert admin


def test_a_password_login_made_before_the_worker_links_the_user(server, pool):
    """Signing in before the worker ran (or when the trigger failed) still works."""
    username = f"early{uuid.uuid4().hex[:6]}"
    sub = pool.sign_up(username, PASSWORD, f"{username}@example.com")
    r = requests.get(f"{server.url}/api/v1/user", auth=(username, PASSWORD), timeout=30)
    assert r.status_code == 200, r.text
    assert server.sql("SELECT username FROM users WHERE cognito_sub = ?", sub) == [(username,)]


def test_with_the_pool_unreachable_logins_are_503_and_break_glass_still_works(
    tmp_path, pool, signed_up
):
    from tests.support.server import free_port

    username, _ = signed_up
    env = {**pool.server_env(), "CARGOHOLD_COGNITO_ENDPOINT": f"http://127.0.0.1:{free_port()}"}
    srv = make_server(tmp_path / "registry", env)
    srv.start()
    try:
        r = requests.get(f"{srv.url}/api/v1/user", auth=(username, PASSWORD), timeout=30)
        assert r.status_code == 503 and r.headers["Retry-After"]
        token = pool.tokens(username, PASSWORD)["IdToken"]
        assert bearer(srv, token).status_code == 503  # the pool's keys cannot be read
        r = requests.get(f"{srv.url}/api/v1/user", auth=("admin", srv.admin_password), timeout=30)
        assert r.status_code == 200
    finally:
        srv.stop()
