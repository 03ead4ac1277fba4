"""Trust policies name issuers the server fetches documents from: those fetches must not reach
into the network behind it, tell an anonymous caller what they found, or let one tenant's slow
issuer hold up everyone else's CI logins."""

from __future__ import annotations

import secrets
import threading

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.oidc_issuer import Issuer, TLSFiles, self_signed
from tests.support.server import free_port, make_server
from tests.support.services import Backend


def serve(tmp_path_factory, name: str, env: dict[str, str]):
    backend = Backend()
    srv = make_server(tmp_path_factory.mktemp(name), {**backend.env(), **env})
    # One worker: logins of different issuers share one process and its key cache.
    srv.start(workers=1)
    return srv, backend


@pytest.fixture(scope="module")
def unlisted_server(tmp_path_factory):
    srv, backend = serve(tmp_path_factory, "oidc-unlisted", {})
    yield srv
    srv.stop()
    backend.cleanup()


@pytest.fixture(scope="module")
def tls(tmp_path_factory) -> TLSFiles:
    return self_signed(tmp_path_factory.mktemp("issuer-tls"))


@pytest.fixture(scope="module")
def listed_server(tmp_path_factory, tls):
    env = {
        "CARGOHOLD_OIDC_ISSUERS": "http://127.0.0.1:*, https://localhost:*",
        "CARGOHOLD_OIDC_FETCH_TIMEOUT": "8",
        # The test issuer's certificate is the only one this server trusts.
        "SSL_CERT_FILE": str(tls.cert),
    }
    srv, backend = serve(tmp_path_factory, "oidc-listed", env)
    yield srv
    srv.stop()
    backend.cleanup()


@pytest.fixture
def issuers():
    made: list[Issuer] = []

    def make(**kwargs) -> Issuer:
        made.append(Issuer(**kwargs))
        return made[-1]

    yield make
    for issuer in made:
        issuer.close()


def trust(srv, issuer_url: str, org: str = "acme") -> tuple[str, requests.Response]:
    """A new robot of `org` with a trust policy for `issuer_url`; the policy's creation answer."""
    owner = "admin" if org == "acme" else "mallory"
    auth = (owner, srv.users[owner])
    name = f"ci{secrets.token_hex(3)}"
    api = f"{srv.url}/api/v1/orgs/{org}"
    assert requests.post(f"{api}/robots", json={"name": name}, auth=auth).status_code == 201
    policy = {
        "name": "p",
        "robot": name,
        "issuer": issuer_url,
        "audience": "cargohold",
        "claims": {"repository": "acme/*"},
    }
    return f"{org}+{name}", requests.post(f"{api}/trust-policies", json=policy, auth=auth)


def exchange(srv, robot: str, id_token: str, timeout: float = 60) -> requests.Response:
    body = {"robot": robot, "id_token": id_token}
    return requests.post(f"{srv.url}/api/v1/oidc/token", json=body, timeout=timeout)


# ---- where the server may fetch from ---------------------------------------------------------


def test_issuers_on_private_addresses_or_plain_http_are_refused(unlisted_server, issuers):
    issuer = issuers()
    port = issuer.httpd.server_port
    for url in [
        issuer.url,
        f"https://127.0.0.1:{port}",
        f"https://localhost:{port}",
        "https://10.1.2.3",
        "https://192.168.0.1:8443",
        "https://169.254.169.254",
        "https://[::1]",
        "https://[::ffff:127.0.0.1]",
        "http://token.actions.githubusercontent.com",
    ]:
        _robot, r = trust(unlisted_server, url)
        assert r.status_code == 400, (url, r.text)
    _robot, r = trust(unlisted_server, "https://token.actions.githubusercontent.com")
    assert r.status_code == 201, r.text


def test_a_policy_from_before_the_rules_fetches_nothing_private(unlisted_server, issuers):
    issuer = issuers()
    robot, r = trust(unlisted_server, "https://ci.example.com")
    assert r.status_code == 201
    # As a policy written when loopback issuers were allowed would be.
    unlisted_server.sql(
        "UPDATE trust_policies SET issuer = ? WHERE id = ?", issuer.url, r.json()["id"]
    )
    assert exchange(unlisted_server, robot, issuer.token()).status_code == 401
    assert issuer.requests == []


def test_an_https_issuer_on_a_listed_host(listed_server, issuers, tls):
    issuer = issuers(tls=tls)
    robot, r = trust(listed_server, issuer.url)
    assert r.status_code == 201, r.text
    r = exchange(listed_server, robot, issuer.token())
    assert r.status_code == 200, r.text
    assert r.json()["username"] == robot


def test_redirects_to_another_origin_are_not_followed(listed_server, issuers):
    internal = issuers()
    front = issuers(redirect_to=f"{internal.url}/.well-known/openid-configuration")
    robot, r = trust(listed_server, front.url)
    assert r.status_code == 201, r.text
    # Signed by the internal issuer's key in the front issuer's name: accepted only if the
    # server followed the redirect to the internal address.
    forged = internal.token(iss=front.url)
    assert exchange(listed_server, robot, forged).status_code == 401
    assert front.requests == ["/.well-known/openid-configuration"]
    assert internal.requests == []


def test_callers_cannot_tell_a_closed_port_from_an_open_one(listed_server, issuers):
    answering = issuers()
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    answers = []
    for url in [f"http://127.0.0.1:{free_port()}", f"{answering.url}/not-an-issuer"]:
        robot, r = trust(listed_server, url)
        assert r.status_code == 201, r.text
        r = exchange(listed_server, robot, answering.token(iss=url, key=key))
        answers.append((r.status_code, r.json()))
    assert answering.requests, "the open port was asked"
    assert answers[0] == answers[1]
    assert answers[0][0] == 401
    # The detail is for the operator's log.
    log = listed_server.log_path.read_text()
    assert "Connection refused" in log or "ConnectionRefusedError" in log


# ---- a slow issuer ---------------------------------------------------------------------------


def test_a_slow_issuer_holds_up_only_its_own_logins(listed_server, issuers):
    slow, fast = issuers(trickle=True), issuers()
    slow_robot, r = trust(listed_server, slow.url)
    assert r.status_code == 201
    fast_robot, r = trust(listed_server, fast.url, org="other")
    assert r.status_code == 201
    # Whatever happens, the slow issuer finishes in the end, so nothing here hangs for long.
    safety = threading.Timer(60, slow.release.set)
    safety.start()
    slow_login = threading.Thread(target=exchange, args=(listed_server, slow_robot, slow.token()))
    slow_login.start()
    try:
        assert slow.trickling.wait(30), "the slow issuer was never asked"
        r = exchange(listed_server, fast_robot, fast.token(), timeout=120)
        # Answered while the slow issuer was still trickling its first document.
        held_up = slow.release.is_set()
        assert r.status_code == 200, r.text
        assert not held_up, "the other issuer's login waited for the slow issuer"
    finally:
        slow.release.set()
        safety.cancel()
        slow_login.join(120)


def test_an_issuer_that_never_finishes_is_given_up(listed_server, issuers):
    stuck = issuers(trickle=True)
    robot, r = trust(listed_server, stuck.url)
    assert r.status_code == 201
    # The fetch deadline (8 s here) ends it; a generous bound only so a regression fails.
    assert exchange(listed_server, robot, stuck.token(), timeout=60).status_code == 401
    assert stuck.trickling.is_set() and not stuck.release.is_set()
