"""Organisations, members, invitations, access tokens, robots and CI workload identity, over the
management API of a real server, with registry operations checked through the OCI client."""

from __future__ import annotations

import secrets
import subprocess
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import require_tool
from tests.support.client import OCIClient
from tests.support.oidc_issuer import Issuer
from tests.support.server import login_throttle, running_server


def api(server, user: str | None, password: str | None = None) -> requests.Session:
    s = requests.Session()
    if user:
        s.auth = (user, password or server.users[user])
    s.base = f"{server.url}/api/v1"  # type: ignore[attr-defined]
    return s


def call(s: requests.Session, method: str, path: str, **kw) -> requests.Response:
    return s.request(method, s.base + path, **kw)  # type: ignore[attr-defined]


def error_code(r: requests.Response) -> str:
    return r.json()["errors"][0]["code"]


def unique(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(3)}"


# ---- organisations, registries, members ------------------------------------------------------


def test_user_sees_own_organisations(server):
    r = call(api(server, "alice"), "GET", "/user")
    assert r.status_code == 200
    assert {"name": "acme", "role": "writer"} in [
        {"name": o["name"], "role": o["role"]} for o in r.json()["organisations"]
    ]
    assert "other" not in [o["name"] for o in r.json()["organisations"]]


def test_anonymous_api_call_gets_basic_challenge(server):
    r = call(api(server, None), "GET", "/user")
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].startswith("Basic")
    assert error_code(r) == "UNAUTHORIZED"


def test_create_org_makes_creator_admin_and_registry_flow(server):
    s = api(server, "victor")
    name = unique("v")
    r = call(s, "POST", "/orgs", json={"name": name})
    assert r.status_code == 201, r.text
    assert r.json()["role"] == "admin"
    assert call(s, "POST", "/orgs", json={"name": name}).status_code == 400
    r = call(s, "POST", f"/orgs/{name}/registries", json={"name": "images", "public": False})
    assert r.status_code == 201
    assert call(s, "GET", f"/orgs/{name}/registries").json()["registries"] == [
        {"organisation": name, "name": "images", "public": False}
    ]
    r = call(s, "PATCH", f"/orgs/{name}/registries/images", json={"public": True})
    assert r.json()["public"] is True
    # An outsider learns nothing about the organisation, not even that it exists.
    r = call(api(server, "mallory"), "GET", f"/orgs/{name}")
    assert r.status_code == 404
    assert call(api(server, "mallory"), "GET", "/orgs/no-such-org").status_code == 404


@pytest.mark.parametrize(
    "body",
    [{"name": "UPPER"}, {"name": ""}, {"name": 12}, {"name": "../x"}, {}, {"name": "a" * 65}],
)
def test_bad_org_names_are_refused(server, body):
    r = call(api(server, "alice"), "POST", "/orgs", json=body)
    assert r.status_code == 400
    assert error_code(r) == "INVALID"


def test_org_must_keep_one_admin(server):
    s = api(server, "victor")
    name = unique("k")
    assert call(s, "POST", "/orgs", json={"name": name}).status_code == 201
    r = call(s, "PUT", f"/orgs/{name}/members/victor", json={"role": "writer"})
    assert r.status_code == 400 and "at least one admin" in r.text
    r = call(s, "DELETE", f"/orgs/{name}/members/victor")
    assert r.status_code == 400
    members = call(s, "GET", f"/orgs/{name}/members").json()["members"]
    assert members == [{"name": "victor", "role": "admin"}]
    # With a second admin, the first may step down.
    assert call(s, "PUT", f"/orgs/{name}/members/alice", json={"role": "admin"}).status_code == 200
    assert (
        call(s, "PUT", f"/orgs/{name}/members/victor", json={"role": "viewer"}).status_code == 200
    )
    # victor is a viewer now: alice, the remaining admin, manages the organisation.
    r = call(api(server, "alice"), "PUT", f"/orgs/{name}/members/victor", json={"role": "owner"})
    assert r.status_code == 400 and "role must be one of" in r.text
    r = call(s, "PUT", f"/orgs/{name}/members/victor", json={"role": "admin"})
    assert r.status_code == 403


def test_members_need_admin_to_manage(server):
    # alice is a writer of acme: she may list members but not change them.
    s = api(server, "alice")
    assert call(s, "GET", "/orgs/acme/members").status_code == 200
    r = call(s, "PUT", "/orgs/acme/members/victor", json={"role": "admin"})
    assert r.status_code == 403 and error_code(r) == "DENIED"
    members = call(s, "GET", "/orgs/acme/members").json()["members"]
    assert {"name": "victor", "role": "viewer"} in members


# ---- invitations -----------------------------------------------------------------------------


def test_invitation_accept_decline_and_expiry(server):
    owner = api(server, "mallory")
    org = unique("inv")
    assert call(owner, "POST", "/orgs", json={"name": org}).status_code == 201
    r = call(owner, "POST", f"/orgs/{org}/invitations", json={"invitee": "alice", "role": "writer"})
    assert r.status_code == 201
    inv = r.json()["id"]
    # Only the invitee can answer, and an outsider cannot see the organisation yet.
    assert call(api(server, "victor"), "POST", f"/invitations/{inv}/accept").status_code == 404
    alice = api(server, "alice")
    assert call(alice, "GET", f"/orgs/{org}").status_code == 404
    assert [i["id"] for i in call(alice, "GET", "/invitations").json()["invitations"]] == [inv]
    r = call(alice, "POST", f"/invitations/{inv}/accept")
    assert r.status_code == 200 and r.json()["state"] == "accepted"
    assert call(alice, "GET", f"/orgs/{org}").status_code == 200
    # Answered invitations cannot be answered again.
    assert call(alice, "POST", f"/invitations/{inv}/decline").status_code == 404

    r = call(
        owner, "POST", f"/orgs/{org}/invitations", json={"invitee": "victor", "role": "viewer"}
    )
    declined = r.json()["id"]
    assert (
        call(api(server, "victor"), "POST", f"/invitations/{declined}/decline").json()["state"]
        == "declined"
    )
    assert call(api(server, "victor"), "GET", f"/orgs/{org}").status_code == 404

    bad = [
        {"invitee": "victor", "role": "root"},
        {"invitee": "", "role": "viewer"},
        {"invitee": "victor", "role": "viewer", "expires_in_days": 0},
    ]
    for body in bad:
        assert call(owner, "POST", f"/orgs/{org}/invitations", json=body).status_code == 400


def test_expired_invitation_cannot_be_accepted(server):
    owner = api(server, "mallory")
    org = unique("exp")
    call(owner, "POST", "/orgs", json={"name": org})
    inv = call(
        owner, "POST", f"/orgs/{org}/invitations", json={"invitee": "victor", "role": "viewer"}
    ).json()["id"]
    server.sql("UPDATE invitations SET expires_at = '2000-01-01 00:00:00' WHERE id = ?", inv)
    r = call(api(server, "victor"), "POST", f"/invitations/{inv}/accept")
    assert r.status_code == 404
    states = call(owner, "GET", f"/orgs/{org}/invitations").json()["invitations"]
    assert states[0]["state"] == "expired"


# ---- access tokens ---------------------------------------------------------------------------


def test_personal_token_lifecycle(server):
    s = api(server, "alice")
    r = call(s, "POST", "/tokens", json={"name": "laptop", "expires_in_days": 30})
    assert r.status_code == 201
    token = r.json()["token"]
    assert token.startswith("chp_")
    listed = call(s, "GET", "/tokens").json()["tokens"]
    mine = next(t for t in listed if t["id"] == r.json()["id"])
    assert "token" not in mine and mine["last_used_at"] is None
    # Stored hashed: the secret appears nowhere in the database.
    rows = server.sql("SELECT * FROM access_tokens")
    assert rows and token not in repr(rows)
    # The secret half is URL-safe base64 and may hold "_" itself: split off the prefix only.
    assert token.split("_", 2)[2] not in repr(rows)

    # Usable as a registry password, and as the management API's password.
    client = OCIClient(server.url, "alice", token)
    client.push_image("acme/main/tokens/app", "v1", [b"layer-with-token"])
    assert call(api(server, "alice", token), "GET", "/user").status_code == 200
    # __token__ is accepted as the username, as PyPI does.
    assert call(api(server, "__token__", token), "GET", "/user").status_code == 200
    used = next(t for t in call(s, "GET", "/tokens").json()["tokens"] if t["id"] == mine["id"])
    assert used["last_used_at"] is not None

    # A token cannot mint tokens (no chains of credentials).
    r = call(api(server, "alice", token), "POST", "/tokens", json={"name": "child"})
    assert r.status_code == 403

    assert call(s, "DELETE", f"/tokens/{mine['id']}").status_code == 204
    r = OCIClient(server.url, "alice", token).request("GET", "/v2/acme/main/tokens/app/tags/list")
    assert r.status_code == 401
    assert call(s, "DELETE", f"/tokens/{mine['id']}").status_code == 404


def test_read_only_and_registry_limited_tokens(server):
    s = api(server, "alice")
    ro = call(s, "POST", "/tokens", json={"name": "ro", "scope": "read"}).json()["token"]
    OCIClient(server.url, "alice", server.users["alice"]).push_image(
        "acme/main/ro/app", "v1", [b"ro-layer"]
    )
    reader = OCIClient(server.url, "alice", ro)
    assert reader.request("GET", "/v2/acme/main/ro/app/manifests/v1").status_code == 200
    r = reader.request("POST", "/v2/acme/main/ro/app/blobs/uploads/")
    assert r.status_code in (401, 403)

    limited = call(
        s, "POST", "/tokens", json={"name": "second-only", "registries": ["acme/second"]}
    ).json()["token"]
    lc = OCIClient(server.url, "alice", limited)
    lc.push_image("acme/second/limited/app", "v1", [b"limited"])
    assert lc.request("GET", "/v2/acme/main/ro/app/manifests/v1").status_code in (401, 403)
    # The catalog shows only what the token reaches (and public registries).
    names = lc.request("GET", "/v2/_catalog").json()["repositories"]
    assert "acme/second/limited/app" in names and "acme/main/ro/app" not in names

    for body in [
        {"name": "x", "scope": "admin"},
        {"name": "x", "registries": ["other/nope"]},
        {"name": "x", "registries": []},
        {"name": "x", "expires_in_days": -1},
        {"scope": "read"},
    ]:
        r = call(s, "POST", "/tokens", json=body)
        assert r.status_code == 400, body


def test_expired_token_is_refused(server):
    s = api(server, "alice")
    r = call(s, "POST", "/tokens", json={"name": "short", "expires_in_days": 1}).json()
    server.sql("UPDATE access_tokens SET expires_at = '2000-01-01 00:00:00' WHERE id = ?", r["id"])
    assert call(api(server, "alice", r["token"]), "GET", "/user").status_code == 401


@pytest.mark.parametrize(
    "password",
    ["chp_", "chp_0123456789abcdef_" + "x" * 43, "chp_zz_yy", "Bearer nonsense", "a.b.c"],
)
def test_malformed_tokens_are_refused(server, password):
    assert call(api(server, "alice", password), "GET", "/user").status_code == 401


def test_registry_jwt_is_not_a_management_credential(server):
    client = OCIClient(server.url, "alice", server.users["alice"])
    client.request("GET", "/v2/acme/main/anything/tags/list")
    jwt_token = next(iter(client.tokens.values()))
    r = requests.get(f"{server.url}/api/v1/user", headers={"Authorization": f"Bearer {jwt_token}"})
    assert r.status_code == 401


# ---- password changes and revocation ---------------------------------------------------------


def registry_tokens(server, user: str, password: str) -> tuple[str, str]:
    """A registry JWT and a refresh token, from the OAuth2 password grant."""
    r = requests.post(
        f"{server.url}/auth/token",
        data={
            "grant_type": "password",
            "username": user,
            "password": password,
            "service": "cargohold",
            "scope": "repository:acme/public/x:pull",
            "access_type": "offline",
        },
    )
    assert r.status_code == 200, r.text
    return r.json()["access_token"], r.json()["refresh_token"]


def bearer_ok(server, jwt_token: str) -> bool:
    r = requests.get(f"{server.url}/v2/", headers={"Authorization": f"Bearer {jwt_token}"})
    assert r.status_code in (200, 401), r.text
    return r.status_code == 200


def refresh_ok(server, refresh: str) -> bool:
    data = {"grant_type": "refresh_token", "refresh_token": refresh, "service": "cargohold"}
    r = requests.post(f"{server.url}/auth/token", data=data)
    assert r.status_code in (200, 401), r.text
    return r.status_code == 200


def test_password_change_ends_what_the_old_password_minted(server):
    name, old, new = unique("pw"), "old-" + secrets.token_hex(8), "new-" + secrets.token_hex(8)
    server.flask("user", "create", name, f"--password={old}")
    jwt_old, refresh_old = registry_tokens(server, name, old)
    token = call(api(server, name, old), "POST", "/tokens", json={"name": "kept"}).json()["token"]
    jwt_of_token, refresh_of_token = registry_tokens(server, name, token)
    assert bearer_ok(server, jwt_old) and refresh_ok(server, refresh_old)

    s = api(server, name, old)
    body = {"current_password": "not-" + old, "new_password": new}
    r = call(s, "POST", "/user/password", json=body)
    assert r.status_code == 400 and error_code(r) == "INVALID"
    r = call(s, "POST", "/user/password", json={"current_password": old, "new_password": "short"})
    assert r.status_code == 400 and "at least 8" in r.text
    # An access token never manages its own account, its password included.
    r = call(
        api(server, name, token), "POST", "/user/password", json={**body, "current_password": old}
    )
    assert r.status_code == 403
    assert bearer_ok(server, jwt_old), "refused changes must change nothing"

    r = call(s, "POST", "/user/password", json={"current_password": old, "new_password": new})
    assert r.status_code == 204, r.text
    assert not bearer_ok(server, jwt_old)
    assert not refresh_ok(server, refresh_old)
    assert call(api(server, name, old), "GET", "/user").status_code == 401
    assert call(api(server, name, new), "GET", "/user").status_code == 200
    # Access tokens are credentials of their own: they, and what they minted, keep working.
    assert bearer_ok(server, jwt_of_token) and refresh_ok(server, refresh_of_token)

    # A site admin's reset, over the API or from the command line, does the same.
    jwt_new, refresh_new = registry_tokens(server, name, new)
    reset = "reset-" + secrets.token_hex(8)
    body = {"new_password": reset}
    r = call(api(server, "alice"), "PUT", f"/users/{name}/password", json=body)
    assert r.status_code == 403
    assert (
        call(api(server, "admin"), "PUT", f"/users/{name}/password", json=body).status_code == 204
    )
    assert not bearer_ok(server, jwt_new) and not refresh_ok(server, refresh_new)
    assert call(api(server, name, new), "GET", "/user").status_code == 401
    jwt_reset, _ = registry_tokens(server, name, reset)
    server.flask("user", "password", name, "--password=again-" + secrets.token_hex(8))
    assert not bearer_ok(server, jwt_reset)
    assert call(api(server, name, reset), "GET", "/user").status_code == 401


def test_revoking_an_access_token_ends_its_registry_tokens(server):
    s = api(server, "alice")
    made = call(s, "POST", "/tokens", json={"name": "revoked-jwt"}).json()
    jwt_token, refresh = registry_tokens(server, "alice", made["token"])
    assert bearer_ok(server, jwt_token) and refresh_ok(server, refresh)
    assert call(s, "DELETE", f"/tokens/{made['id']}").status_code == 204
    assert not bearer_ok(server, jwt_token)
    assert not refresh_ok(server, refresh)


# ---- robots ----------------------------------------------------------------------------------


def test_robot_pushes_with_its_token_from_a_script(server, tmp_path):
    admin = api(server, "admin")
    name = unique("ci")
    r = call(admin, "POST", "/orgs/acme/robots", json={"name": name, "description": "CI"})
    assert r.status_code == 201 and r.json()["name"] == f"acme+{name}"
    robot = f"acme+{name}"
    assert call(
        admin, "PUT", f"/orgs/acme/registries/main/grants/{robot}", json={"role": "writer"}
    ).ok
    token = call(admin, "POST", f"/orgs/acme/robots/{name}/tokens", json={"name": "ci"}).json()[
        "token"
    ]
    # Robots have no password and no organisation role.
    assert call(api(server, robot, token), "GET", "/orgs/acme/members").status_code == 404

    crane = require_tool("crane")
    script = tmp_path / "push.sh"
    script.write_text(
        "set -eu\n"
        f'"{crane}" auth login "$REGISTRY" -u "$ROBOT" -p "$ROBOT_TOKEN"\n'
        f'"{crane}" append --insecure -f /dev/null -t "$REGISTRY/acme/main/robot/app:ci"\n'
        f'"{crane}" ls --insecure "$REGISTRY/acme/main/robot/app"\n'
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "DOCKER_CONFIG": str(tmp_path / "docker"),
        "REGISTRY": server.host,
        "ROBOT": robot,
        "ROBOT_TOKEN": token,
    }
    out = subprocess.run(["sh", str(script)], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-1] == "ci"

    # The grant is on acme/main alone.
    rc = OCIClient(server.url, robot, token)
    assert rc.request("POST", "/v2/acme/second/robot/app/blobs/uploads/").status_code in (401, 403)
    # Deleting the robot stops its token at once.
    assert call(admin, "DELETE", f"/orgs/acme/robots/{name}").status_code == 204
    assert (
        OCIClient(server.url, robot, token)
        .request("GET", "/v2/acme/main/robot/app/tags/list")
        .status_code
        == 401
    )


def test_robot_names_and_grants_are_validated(server):
    admin = api(server, "admin")
    assert call(admin, "POST", "/orgs/acme/robots", json={"name": "Bad Name"}).status_code == 400
    r = call(admin, "PUT", "/orgs/acme/registries/main/grants/alice", json={"role": "superuser"})
    assert r.status_code == 400
    r = call(admin, "PUT", "/orgs/acme/registries/nope/grants/alice", json={"role": "viewer"})
    assert r.status_code == 404
    # A robot of another organisation cannot be granted roles here.
    m = api(server, "mallory")
    call(m, "POST", "/orgs/other/robots", json={"name": "theirs"})
    r = call(
        admin, "PUT", "/orgs/acme/registries/main/grants/other+theirs", json={"role": "viewer"}
    )
    assert r.status_code == 400


def test_registry_grant_gives_a_user_one_registry(server):
    admin = api(server, "mallory")
    assert call(
        admin, "PUT", "/orgs/other/registries/private/grants/victor", json={"role": "viewer"}
    ).ok
    m = OCIClient(server.url, "mallory", server.users["mallory"])
    m.push_image("other/private/shared/app", "v1", [b"shared"])
    v = OCIClient(server.url, "victor", server.users["victor"])
    assert v.request("GET", "/v2/other/private/shared/app/manifests/v1").status_code == 200
    assert v.request("POST", "/v2/other/private/shared/app/blobs/uploads/").status_code in (
        401,
        403,
    )
    # ...and nothing of the organisation itself.
    assert call(api(server, "victor"), "GET", "/orgs/other/members").status_code == 404
    assert call(admin, "DELETE", "/orgs/other/registries/private/grants/victor").status_code == 204
    assert v.request("GET", "/v2/other/private/shared/app/manifests/v1").status_code in (401, 403)


# ---- CI workload identity --------------------------------------------------------------------


@pytest.fixture(scope="module")
def issuer():
    i = Issuer()
    yield i
    i.close()


@pytest.fixture(scope="module")
def ci_robot(server, issuer):
    admin = api(server, "admin")
    name = unique("gha")
    call(admin, "POST", "/orgs/acme/robots", json={"name": name})
    robot = f"acme+{name}"
    call(admin, "PUT", f"/orgs/acme/registries/main/grants/{robot}", json={"role": "writer"})
    r = call(
        admin,
        "POST",
        "/orgs/acme/trust-policies",
        json={
            "name": "main-branch",
            "robot": robot,
            "issuer": issuer.url,
            "audience": "cargohold",
            "claims": {"repository": "acme/*", "ref": "refs/heads/main"},
        },
    )
    assert r.status_code == 201, r.text
    return robot


def exchange(server, robot: str, id_token: str) -> requests.Response:
    return requests.post(
        f"{server.url}/api/v1/oidc/token", json={"robot": robot, "id_token": id_token}
    )


def test_ci_job_pushes_with_only_an_oidc_token(server, issuer, ci_robot):
    r = exchange(server, ci_robot, issuer.token())
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["username"] == ci_robot and body["expires_in"] <= 900
    client = OCIClient(server.url, ci_robot, body["token"])
    client.push_image("acme/main/ci/app", "build-1", [b"from-ci"])
    # The ID token itself also works as the password of a registry login.
    direct = OCIClient(server.url, ci_robot, issuer.token())
    assert direct.request("GET", "/v2/acme/main/ci/app/manifests/build-1").status_code == 200


def test_key_rotation_is_picked_up(server, issuer, ci_robot):
    assert exchange(server, ci_robot, issuer.token()).status_code == 200
    new_kid = issuer.rotate()
    # A token signed with the new key makes the server refetch the JWKS once it is allowed to.
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        if exchange(server, ci_robot, issuer.token(kid=new_kid)).status_code == 200:
            break
        time.sleep(2)
    else:
        pytest.fail("a token signed with a rotated-in key was never accepted")


def test_bad_oidc_tokens_are_refused(server, issuer, ci_robot):
    from cryptography.hazmat.primitives.asymmetric import rsa

    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    bad = {
        "wrong audience": issuer.token(audience="someone-else"),
        "expired": issuer.token(issued_ago=3600, lifetime=300),
        "unknown key": issuer.token(kid="not-published", key=stranger),
        "claim mismatch": issuer.token(repository="evil/app"),
        "ref mismatch": issuer.token(ref="refs/heads/feature"),
        "forged signature": issuer.token(key=stranger),
        "not a jwt": "not-a-jwt",
        "other issuer": issuer.token(iss="https://token.actions.example.com"),
    }
    for why, token in bad.items():
        r = exchange(server, ci_robot, token)
        assert r.status_code == 401, why
        assert (
            OCIClient(server.url, ci_robot, token)
            .request("GET", "/v2/acme/main/ci/app/tags/list")
            .status_code
            == 401
        ), why
    assert exchange(server, "acme+nobody", issuer.token()).status_code == 401


def test_trust_policy_input_is_validated(server, issuer, ci_robot):
    admin = api(server, "admin")
    base = {"name": "p", "robot": ci_robot, "issuer": issuer.url, "audience": "a", "claims": {}}
    for change in [
        {"claims": {}},
        {"issuer": "http://ci.example.com"},
        {"issuer": "ftp://x"},
        {"robot": "acme+missing"},
        {"audience": ""},
        {"claims": {"repository": ""}},
    ]:
        body = {**base, "claims": {"repository": "acme/*"}, **change}
        r = call(admin, "POST", "/orgs/acme/trust-policies", json=body)
        assert r.status_code in (400, 404), (change, r.text)
    # Only admins manage trust policies.
    r = call(api(server, "alice"), "POST", "/orgs/acme/trust-policies", json=base)
    assert r.status_code == 403


# ---- login throttling ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def strict_server(tmp_path_factory):
    limits = login_throttle(per_account=3, per_address=6)
    with running_server(tmp_path_factory.mktemp("strict"), limits, workers=1) as srv:
        yield srv


def test_failed_logins_are_throttled_per_account_and_address(strict_server):
    srv = strict_server
    token_url = f"{srv.url}/auth/token"
    for _ in range(3):
        assert requests.get(token_url, auth=("alice", "wrong-password")).status_code == 401
    r = requests.get(token_url, auth=("alice", srv.users["alice"]))
    assert r.status_code == 429
    assert int(r.headers["Retry-After"]) > 0
    assert r.json()["errors"][0]["code"] == "TOOMANYREQUESTS"
    # Another account from the same address still works until the address limit.
    assert requests.get(token_url, auth=("victor", srv.users["victor"])).status_code == 200
    for _ in range(3):
        requests.get(token_url, auth=("victor", "wrong-password"))
    r = requests.get(token_url, auth=("mallory", srv.users["mallory"]))
    assert r.status_code == 429
    # The password never reaches the log.
    log = Path(srv.log_path).read_text()
    assert srv.users["alice"] not in log and "wrong-password" not in log


@pytest.fixture(scope="module")
def per_token_server(tmp_path_factory):
    """A low per-account limit and a high per-address one: every test request is from loopback."""
    limits = login_throttle(per_account=3, per_address=1000)
    with running_server(tmp_path_factory.mktemp("per-token"), limits, workers=1) as srv:
        yield srv


def test_failed_token_logins_lock_only_the_token_tried(per_token_server):
    srv = per_token_server
    token_url = f"{srv.url}/auth/token"
    s = api(srv, "alice")
    first = call(s, "POST", "/tokens", json={"name": "first"}).json()
    second = call(s, "POST", "/tokens", json={"name": "second"}).json()["token"]
    # Strangers failing as __token__, with garbage and with tokens that do not exist.
    for password in ["wrong", "chp_", "chp_0123456789abcdef_" + "x" * 43, "chp_" + "1" * 16]:
        assert requests.get(token_url, auth=("__token__", password)).status_code == 401
    assert requests.get(token_url, auth=("__token__", first["token"])).status_code == 200
    assert requests.get(token_url, auth=("__token__", second)).status_code == 200
    # Guessing the secret of one token locks that token alone.
    wrong_secret = first["prefix"] + "_" + "y" * 43
    for _ in range(3):
        assert requests.get(token_url, auth=("__token__", wrong_secret)).status_code == 401
    assert requests.get(token_url, auth=("__token__", first["token"])).status_code == 429
    assert requests.get(token_url, auth=("alice", first["token"])).status_code == 429
    assert requests.get(token_url, auth=("__token__", second)).status_code == 200
    assert requests.get(token_url, auth=("alice", srv.users["alice"])).status_code == 200


def test_a_correct_login_clears_the_accounts_count(per_token_server):
    srv = per_token_server
    name, password = unique("forgetful"), "right-" + secrets.token_hex(8)
    srv.flask("user", "create", name, f"--password={password}")
    token_url = f"{srv.url}/auth/token"
    for _ in range(2):  # two wrong of three allowed, a right one, and two wrong again
        for _ in range(2):
            assert requests.get(token_url, auth=(name, "wrong-password")).status_code == 401
        assert requests.get(token_url, auth=(name, password)).status_code == 200
    # The count is where the last correct login left it: nothing.
    for _ in range(2):
        assert requests.get(token_url, auth=(name, "wrong-password")).status_code == 401
    assert requests.get(token_url, auth=(name, password)).status_code == 200


def test_wrong_current_passwords_count_as_failed_logins(per_token_server):
    srv = per_token_server
    name, password = unique("guess"), "right-" + secrets.token_hex(8)
    srv.flask("user", "create", name, f"--password={password}")
    s = api(srv, name, password)
    body = {"current_password": "wrong-" + secrets.token_hex(4), "new_password": "x" * 12}
    for _ in range(3):
        r = call(s, "POST", "/user/password", json=body)
        assert r.status_code == 400 and error_code(r) == "INVALID", r.text
    # The guesses were kept although each request was refused, and the correct Basic login of
    # each request (which clears the account's own count) did not clear them.
    r = call(s, "POST", "/user/password", json={**body, "current_password": password})
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0, r.text


def test_short_passwords_are_refused(server):
    with pytest.raises(subprocess.CalledProcessError) as failed:
        server.flask("user", "create", "shorty", "--password", "short")
    assert "at least 8" in failed.value.stderr


def test_openapi_document_lists_every_management_route(server):
    doc = requests.get(f"{server.url}/api/v1/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    assert "/api/v1/orgs/{org}/trust-policies" in doc["paths"]
    assert "post" in doc["paths"]["/api/v1/tokens"]
    assert doc["paths"]["/api/v1/oidc/token"]["post"]["security"] == []


def test_registry_tokens_keep_the_access_tokens_limits(server):
    s = api(server, "alice")
    made = call(s, "POST", "/tokens", json={"name": "ro-refresh", "scope": "read"}).json()
    form = {
        "grant_type": "password",
        "username": "alice",
        "password": made["token"],
        "scope": "repository:acme/main/limits/app:pull,push",
        "access_type": "offline",
        "service": "cargohold",
    }
    r = requests.post(f"{server.url}/auth/token", data=form)
    assert r.status_code == 200
    assert r.json()["scope"] == "repository:acme/main/limits/app:pull"
    refresh = r.json()["refresh_token"]
    again = {"grant_type": "refresh_token", "refresh_token": refresh, "scope": form["scope"]}
    r = requests.post(f"{server.url}/auth/token", data=again)
    assert r.json()["scope"] == "repository:acme/main/limits/app:pull"
    # Scopes on repositories of unknown tenants are dropped, not refused.
    r = requests.get(
        f"{server.url}/auth/token",
        params={"scope": "repository:nope/nothing/app:pull", "service": "cargohold"},
        auth=("alice", made["token"]),
    )
    assert r.status_code == 200
    # Revoking the access token ends its refresh tokens too.
    assert call(s, "DELETE", f"/tokens/{made['id']}").status_code == 204
    r = requests.post(f"{server.url}/auth/token", data=again)
    assert r.status_code == 401
