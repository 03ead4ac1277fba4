"""Authorization decisions and verified credentials are kept per process while the policy stamp
is unchanged (app/access/decisions.py): a change made through one replica must take effect at
once on another, on the backend CARGOHOLD_TEST_BACKEND names. Two gunicorn servers (two workers
each) share one database and one store, as replicas do."""

from __future__ import annotations

import secrets

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tests.support.client import OCIClient
from tests.support.server import Server

MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@pytest.fixture(scope="module")
def replica(server) -> Server:
    other = server.replica()
    other.start()
    yield other
    other.stop()


def _api(server: Server, user: str, password: str | None = None) -> requests.Session:
    s = requests.Session()
    s.auth = (user, password or server.users[user])
    s.base = f"{server.url}/api/v1"  # type: ignore[attr-defined]
    return s


def _call(s: requests.Session, method: str, path: str, **kw) -> requests.Response:
    return s.request(method, s.base + path, **kw)  # type: ignore[attr-defined]


def _statuses(client: OCIClient, path: str, times: int = 8) -> set[int]:
    """Several requests, so that every worker of the server answers (and caches) some."""
    return {
        client.request("GET", path, headers={"Accept": MANIFEST}).status_code for _ in range(times)
    }


def test_public_to_private_takes_effect_at_once_on_every_replica(server, replica):
    registry = f"flip{secrets.token_hex(3)}"
    admin = _api(server, "admin")
    r = _call(admin, "POST", "/orgs/acme/registries", json={"name": registry, "public": True})
    assert r.status_code == 201, r.text
    repo = f"acme/{registry}/app"
    OCIClient(server.url, "alice", server.users["alice"]).push_image(repo, "v1", [b"flip"])
    path = f"/v2/{repo}/manifests/v1"

    # Anonymous pulls, plain and with an anonymous registry token, on both replicas.
    plain = {s.url: requests.Session() for s in (server, replica)}
    tokens = {}
    for url, s in plain.items():
        r = s.get(f"{url}/auth/token", params={"scope": f"repository:{repo}:pull"})
        assert r.status_code == 200, r.text
        tokens[url] = {"Accept": MANIFEST, "Authorization": f"Bearer {r.json()['token']}"}
        assert {s.get(url + path, headers=tokens[url]).status_code for _ in range(8)} == {200}
        assert {s.get(url + path).status_code for _ in range(8)} == {200}

    r = _call(admin, "PATCH", f"/orgs/acme/registries/{registry}", json={"public": False})
    assert r.status_code == 200 and r.json()["public"] is False

    for url, headers in tokens.items():
        # The token still names pull; the policy no longer grants it.
        assert {plain[url].get(url + path, headers=headers).status_code for _ in range(8)} == {401}
        assert {plain[url].get(url + path).status_code for _ in range(8)} == {401}
    # Members still pull, through either replica.
    for s in (server, replica):
        assert _statuses(OCIClient(s.url, "victor", s.users["victor"]), path) == {200}

    r = _call(admin, "PATCH", f"/orgs/acme/registries/{registry}", json={"public": True})
    assert r.status_code == 200
    for url, s in plain.items():
        assert {s.get(url + path).status_code for _ in range(8)} == {200}


def test_revoked_token_and_removed_member_refused_at_once_on_every_replica(server, replica):
    alice = _api(server, "alice")
    r = _call(alice, "POST", "/tokens", json={"name": f"ci{secrets.token_hex(3)}"})
    assert r.status_code == 201, r.text
    token_id, secret = r.json()["id"], r.json()["token"]
    repo = f"acme/second/cache{secrets.token_hex(3)}"
    OCIClient(server.url, "alice", secret).push_image(repo, "v1", [b"revoke"])
    path = f"/v2/{repo}/manifests/v1"

    # Registry tokens minted from the access token, used on both replicas.
    clients = [OCIClient(s.url, "alice", secret) for s in (server, replica)]
    for client in clients:
        assert _statuses(client, path) == {200}
    bearer = {c.base: c.tokens[path] for c in clients}

    assert _call(alice, "DELETE", f"/tokens/{token_id}").status_code == 204
    for url, token in bearer.items():
        headers = {"Accept": MANIFEST, "Authorization": f"Bearer {token}"}
        codes = {requests.get(url + path, headers=headers).status_code for _ in range(8)}
        assert codes == {401}

    # A member's role goes: the registry tokens minted from her password stop pulling.
    victor = [OCIClient(s.url, "victor", s.users["victor"]) for s in (server, replica)]
    for client in victor:
        assert _statuses(client, path) == {200}
    admin = _api(server, "admin")
    assert _call(admin, "DELETE", "/orgs/acme/members/victor").status_code in (200, 204)
    try:
        for client in victor:
            headers = {"Accept": MANIFEST, "Authorization": f"Bearer {client.tokens[path]}"}
            codes = {
                requests.get(client.base + path, headers=headers).status_code for _ in range(8)
            }
            assert codes <= {401, 403} and codes
    finally:
        r = _call(admin, "PUT", "/orgs/acme/members/victor", json={"role": "viewer"})
        assert r.status_code in (200, 201, 204), r.text


def test_pull_settings_take_effect_at_once_on_every_replica(server, replica):
    """A pull's per-registry settings (signature policy, pull auditing) are kept per process
    under the same stamp: switched through one replica, they hold for the next pull on the
    other, and switched back, likewise."""
    registry = f"pulls{secrets.token_hex(3)}"
    admin = _api(server, "admin")
    r = _call(admin, "POST", "/orgs/acme/registries", json={"name": registry})
    assert r.status_code == 201, r.text
    repo = f"acme/{registry}/app"
    OCIClient(server.url, "alice", server.users["alice"]).push_image(repo, "v1", [b"pulls"])
    path = f"/v2/{repo}/manifests/v1"
    victor = [OCIClient(s.url, "victor", server.users["victor"]) for s in (server, replica)]
    assert all(_statuses(v, path) == {200} for v in victor)  # kept by every worker now

    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    pem = key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
    keys = f"/orgs/acme/registries/{registry}/signing-keys"
    r = _call(admin, "POST", keys, json={"name": "release", "pem": pem})
    assert r.status_code == 201, r.text
    policy = f"/orgs/acme/registries/{registry}/signature-policy"
    r = _call(admin, "PUT", policy, json={"require_signature": True, "exempt_writers": True})
    assert r.status_code == 200, r.text
    assert all(_statuses(v, path) == {403} for v in victor)
    r = _call(_api(replica, "admin"), "PUT", policy, json={"require_signature": False})
    assert r.status_code == 200, r.text
    assert all(_statuses(v, path) == {200} for v in victor)

    settings = f"/orgs/acme/registries/{registry}/audit-settings"
    r = _call(admin, "PUT", settings, json={"audit_pulls": True})
    assert r.status_code == 200, r.text
    assert _statuses(victor[1], path, times=4) == {200}
    r = _call(admin, "GET", "/orgs/acme/audit", params={"repository": repo})
    assert r.status_code == 200, r.text
    pulls = [e for e in r.json()["events"] if e["action"] == "manifest.pull"]
    assert len(pulls) == 4 and {e["actor"]["name"] for e in pulls} == {"victor"}


def test_every_watched_table_has_its_stamp_triggers(server):
    """A later migration that rebuilds one of these tables on SQLite drops its triggers; the
    app then keeps no decisions at all (safe, slower), and this test says which."""
    from app.models.policy_stamp import WATCHED_TABLES

    if server.env.get("CARGOHOLD_DATABASE_URL", "").startswith("postgresql"):
        rows = server.sql(
            "SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE t.tgname LIKE '%policy_stamp'"
        )
        expected = {(table,) for table in WATCHED_TABLES}
    else:
        rows = server.sql("SELECT tbl_name, name FROM sqlite_master WHERE type = 'trigger'")
        expected = {
            (table, f"{table}_stamp_{event}")
            for table in WATCHED_TABLES
            for event in ("ins", "del", "upd")
        }
    assert expected <= set(rows)
