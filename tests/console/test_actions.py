"""Every console form action: what it changes, CSRF refusal, and who may not do it."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from html import unescape
from pathlib import Path

import pytest
import requests

from tests.console.conftest import Console
from tests.pypi.conftest import clean_env
from tests.pypi.dists import make_wheel, unique, upload
from tests.support.client import OCIClient
from tests.support.server import login_throttle, running_server


def new_user(server, prefix: str = "person") -> tuple[str, str]:
    name, password = unique(prefix), secrets.token_urlsafe(12)
    server.flask("user", "create", name, "--password", password)
    return name, password


# ---- signing in and out ----------------------------------------------------------------------


def test_sign_in_and_out(console_for, server):
    c = console_for()
    c.get("/sign-in")
    r = c.post("/sign-in", {"username": "alice", "password": server.users["alice"]})
    assert r.status_code == 302 and r.headers["Location"] == "/"
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    assert "Welcome, alice" in c.get("/").text
    r = c.post("/sign-out")
    assert r.status_code == 302
    assert "Sign in to Cargohold" in c.get("/").text
    assert c.get("/account").status_code == 302


def test_wrong_password_and_tokens_and_robots_do_not_sign_in(console_for, server):
    c = console_for()
    c.get("/sign-in")
    r = c.post("/sign-in", {"username": "alice", "password": "wrong-password"})
    assert r.status_code == 401 and "Wrong username or password" in r.text
    token = requests.post(
        f"{server.url}/api/v1/tokens",
        json={"name": "console"},
        auth=("alice", server.users["alice"]),
    ).json()["token"]
    r = c.post("/sign-in", {"username": "alice", "password": token})
    assert r.status_code == 401
    assert "Welcome" not in c.get("/").text


def test_sign_in_returns_to_the_page_asked_for_and_nowhere_else(console_for, server):
    c = console_for()
    r = c.get("/orgs/acme")
    assert r.headers["Location"] == "/sign-in?next=/orgs/acme"
    c.get("/sign-in?next=/orgs/acme")
    data = {"username": "alice", "password": server.users["alice"], "next": "/orgs/acme"}
    assert c.post("/sign-in", data).headers["Location"] == "/orgs/acme"
    for evil in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        c2 = console_for()
        c2.get("/sign-in")
        data["next"] = evil
        assert c2.post("/sign-in", data).headers["Location"] == "/"


def test_forms_without_the_csrf_token_are_refused(console_for, server):
    c = console_for("alice")
    for path, data in (
        ("/account/tokens", {"name": "csrf"}),
        ("/sign-out", {}),
        ("/orgs/acme/invitations", {"invitee": "x", "role": "viewer"}),
    ):
        r = c.post(path, data, csrf=False)
        assert r.status_code == 400 and "stale" in r.text, path
        r = c.http.post(server.url + path, data={**data, "csrf_token": "forged"})
        assert r.status_code == 400, path
    # Nothing happened: still signed in, no token named csrf.
    assert "csrf</td>" not in c.get("/account").text
    # A sign-in form posted from elsewhere (login CSRF) is refused too.
    r = requests.post(
        server.url + "/sign-in", data={"username": "alice", "password": server.users["alice"]}
    )
    assert r.status_code == 400


# ---- account ---------------------------------------------------------------------------------


def token_id_of(page: str, name: str) -> str:
    row = page.split(f"<td>{name}</td>", 1)[1]
    return row.split("/account/tokens/", 1)[1].split("/revoke", 1)[0]


def test_token_shown_once_works_and_is_revoked(console_for, server):
    c = console_for("alice")
    r = c.follow(
        c.post("/account/tokens", {"name": "laptop", "scope": "read", "expires_in_days": "30"})
    )
    assert "shown this once" in r.text
    secret = r.text.split('id="token-secret"><code>')[1].split("<")[0]
    assert secret.startswith("chp_")
    assert requests.get(f"{server.url}/api/v1/user", auth=("alice", secret)).status_code == 200
    again = c.get("/account")
    assert secret not in again.text and "laptop" in again.text
    token_id = token_id_of(again.text, "laptop")
    r = c.follow(c.post(f"/account/tokens/{token_id}/revoke"))
    assert "revoked" in r.text
    assert requests.get(f"{server.url}/api/v1/user", auth=("alice", secret)).status_code == 401
    # Someone else's token id: refused without effect.
    mine = c.follow(c.post("/account/tokens", {"name": "keep"}))
    keep_id = token_id_of(mine.text, "keep")
    other = console_for("victor")
    r = other.follow(other.post(f"/account/tokens/{keep_id}/revoke"))
    assert "does not exist" in r.text
    assert "keep</td>" in c.get("/account").text
    bad = c.follow(c.post("/account/tokens", {"name": ""}))
    assert "needs a name" in bad.text


def test_password_change_ends_other_sessions(console_for, server):
    name, password = new_user(server)
    first, second = Console(server.url), Console(server.url)
    first.sign_in(name, password)
    second.sign_in(name, password)
    r = first.follow(
        first.post(
            "/account/password",
            {"current_password": "wrong", "new_password": "x" * 12, "confirm_password": "x" * 12},
        )
    )
    assert "current password is not right" in r.text
    new = secrets.token_urlsafe(12)
    r = first.follow(
        first.post(
            "/account/password",
            {"current_password": password, "new_password": new, "confirm_password": new},
        )
    )
    assert "Password changed" in r.text
    assert first.get("/account").status_code == 200
    assert second.get("/account").status_code == 302
    assert requests.get(f"{server.url}/api/v1/user", auth=(name, password)).status_code == 401
    assert requests.get(f"{server.url}/api/v1/user", auth=(name, new)).status_code == 200
    short = first.follow(
        first.post(
            "/account/password",
            {"current_password": new, "new_password": "short", "confirm_password": "short"},
        )
    )
    assert "at least 8" in short.text


# ---- organisation ----------------------------------------------------------------------------


def test_invite_accept_change_role_remove(console_for, server):
    name, password = new_user(server, "invitee")
    admin = console_for("admin")
    r = admin.follow(admin.post("/orgs/acme/invitations", {"invitee": name, "role": "viewer"}))
    assert f"Invited {name} as viewer" in r.text
    person = Console(server.url)
    person.sign_in(name, password)
    assert person.get("/orgs/acme").status_code == 404
    account = person.get("/account")
    assert "Join <strong>acme</strong> as viewer" in account.text
    inv_id = account.text.split("/account/invitations/")[1].split("/accept")[0]
    r = person.follow(person.post(f"/account/invitations/{inv_id}/accept"))
    assert "You joined acme as viewer" in r.text
    assert person.get("/orgs/acme").status_code == 200
    # A viewer may not change roles, even by posting the form directly.
    assert person.post(f"/orgs/acme/members/{name}/role", {"role": "admin"}).status_code == 403
    r = admin.follow(admin.post(f"/orgs/acme/members/{name}/role", {"role": "writer"}))
    assert f"{name} is now writer" in r.text
    r = admin.follow(admin.post(f"/orgs/acme/members/{name}/remove"))
    assert f"{name} removed" in r.text
    assert person.get("/orgs/acme").status_code == 404


def test_last_admin_cannot_be_demoted(console_for):
    admin = console_for("admin")
    r = admin.follow(admin.post("/orgs/acme/members/admin/role", {"role": "viewer"}))
    assert "at least one admin" in r.text
    r = admin.follow(admin.post("/orgs/acme/members/admin/remove"))
    assert "at least one admin" in r.text


def test_create_registry_admin_only(console_for):
    name = unique("reg")
    admin = console_for("admin")
    r = admin.follow(admin.post("/orgs/acme/registries", {"name": name, "public": "on"}))
    assert f"Registry {name} created" in r.text
    assert admin.get(f"/orgs/acme/{name}").status_code == 200
    assert console_for("alice").post("/orgs/acme/registries", {"name": "x"}).status_code == 403
    assert console_for("mallory").post("/orgs/acme/registries", {"name": "x"}).status_code == 404
    bad = admin.follow(admin.post("/orgs/acme/registries", {"name": "Bad Name"}))
    assert "must be lowercase" in bad.text


# ---- repositories ----------------------------------------------------------------------------


def test_delete_tag_and_manifest_with_confirmation(console_for, server):
    repo = unique("console/del")
    oci = OCIClient(server.url, "alice", server.users["alice"])
    digest, _ = oci.push_image(f"acme/main/{repo}", "gone", [b"delete-me"])
    oci.push_image(f"acme/main/{repo}", "stays", [b"keep-me"])
    viewer = console_for("victor")
    assert viewer.post(f"/orgs/acme/main/r/{repo}/-/tags/gone/delete").status_code == 403
    assert (
        console_for("mallory").post(f"/orgs/acme/main/r/{repo}/-/tags/gone/delete").status_code
        == 404
    )
    c = console_for("alice")
    # Without JavaScript, the first post asks for confirmation and changes nothing.
    r = c.post(f"/orgs/acme/main/r/{repo}/-/tags/gone/delete")
    assert r.status_code == 200 and "Delete tag gone?" in r.text
    assert ">gone</a>" in c.get(f"/orgs/acme/main/r/{repo}").text
    r = c.follow(c.post(f"/orgs/acme/main/r/{repo}/-/tags/gone/delete", {"confirm": "yes"}))
    assert "Deleted tag gone" in r.text and ">gone</a>" not in r.text
    # The manifest is now untagged; delete it by digest.
    assert digest[:19] in r.text
    r = c.follow(
        c.post(f"/orgs/acme/main/r/{repo}/-/manifests/{digest}/delete", {"confirm": "yes"})
    )
    assert "Deleted manifest" in r.text
    assert oci.request("GET", f"/v2/acme/main/{repo}/manifests/{digest}").status_code == 404
    r = c.follow(c.post(f"/orgs/acme/main/r/{repo}/-/tags/nope/delete", {"confirm": "yes"}))
    assert "No tag" in r.text


def test_manifest_delete_takes_referrers_and_respects_immutable_tags(console_for, server):
    repo = unique("console/graph")
    oci = OCIClient(server.url, "alice", server.users["alice"])
    subject, manifest = oci.push_image(f"acme/main/{repo}", "signed", [b"graph-subject"])
    size = len(oci.request("GET", f"/v2/acme/main/{repo}/manifests/{subject}").content)
    ref = {"mediaType": manifest["mediaType"], "digest": subject, "size": size}
    signature, _ = oci.push_image(f"acme/main/{repo}", "sig", [b"a signature"], subject=ref)
    pattern = unique("frozen")
    frozen, _ = oci.push_image(f"acme/main/{repo}", pattern, [b"frozen content"])
    rules = f"{server.url}/api/v1/orgs/acme/registries/main/immutable-tags"
    admin = ("admin", server.users["admin"])
    created = requests.post(rules, json={"pattern": pattern}, auth=admin, timeout=30)
    assert created.status_code == 201, created.text
    c = console_for("alice")
    try:
        # An immutable tag refuses its manifest's deletion, and the tag's, as /v2 does.
        for path in (f"-/manifests/{frozen}", f"-/tags/{pattern}"):
            r = c.follow(c.post(f"/orgs/acme/main/r/{repo}/{path}/delete", {"confirm": "yes"}))
            assert "is immutable" in unescape(r.text)
        assert oci.request("GET", f"/v2/acme/main/{repo}/manifests/{frozen}").status_code == 200
    finally:
        requests.delete(f"{rules}/{created.json()['id']}", auth=admin, timeout=30)
    # A manifest goes with the referrers attached to it.
    r = c.follow(
        c.post(f"/orgs/acme/main/r/{repo}/-/manifests/{subject}/delete", {"confirm": "yes"})
    )
    assert "Deleted manifest" in r.text and "1 manifest attached to it" in r.text
    for gone in (subject, signature):
        assert oci.request("GET", f"/v2/acme/main/{repo}/manifests/{gone}").status_code == 404


# ---- Python projects -------------------------------------------------------------------------


def test_yank_unyank_and_delete_python_file(console_for, server, tmp_path):
    project = unique("yankme")
    wheel = make_wheel(tmp_path, project, "1.0")
    r = upload(
        f"{server.url}/api/v1/acme/main/python/",
        wheel,
        project,
        "1.0",
        ("alice", server.users["alice"]),
    )
    assert r.status_code == 200
    base = f"/orgs/acme/main/python/{project}/files/{wheel.name}"
    assert console_for("victor").post(base + "/yank").status_code == 403
    c = console_for("alice")
    r = c.follow(c.post(base + "/yank", {"reason": "broken <b>build</b>"}))
    assert "yanked" in r.text and "broken &lt;b&gt;build&lt;/b&gt;" in r.text
    simple = requests.get(
        f"{server.url}/api/v1/acme/main/python/simple/{project}/",
        auth=("alice", server.users["alice"]),
        headers={"Accept": "application/vnd.pypi.simple.v1+json"},
    ).json()
    assert simple["files"][0]["yanked"] == "broken <b>build</b>"
    r = c.follow(c.post(base + "/unyank"))
    assert "no longer yanked" in r.text
    confirm = c.post(base + "/delete")
    assert confirm.status_code == 200 and "Delete file" in confirm.text
    r = c.post(base + "/delete", {"confirm": "yes"})
    assert r.status_code == 302 and r.headers["Location"] == "/orgs/acme/main"
    assert c.get(f"/orgs/acme/main/python/{project}").status_code == 404


# ---- throttling and idle sessions, on a server of their own ------------------------------------


@pytest.fixture(scope="module")
def strict_server(tmp_path_factory):
    limits = {
        **login_throttle(per_account=3, per_address=100),
        "CARGOHOLD_CONSOLE_IDLE_TIMEOUT": "5",
        # As behind a TLS-terminating proxy.
        "CARGOHOLD_PUBLIC_URL": "https://registry.example.test",
    }
    with running_server(tmp_path_factory.mktemp("console-strict"), limits, workers=1) as srv:
        yield srv


def test_console_sign_in_shares_the_login_throttle(strict_server):
    srv = strict_server
    c = Console(srv.url)
    c.get("/sign-in")
    # Failures at the token service and at the console count together.
    assert requests.get(f"{srv.url}/auth/token", auth=("alice", "wrong")).status_code == 401
    for _ in range(2):
        assert c.post("/sign-in", {"username": "alice", "password": "wrong"}).status_code == 401
    r = c.post("/sign-in", {"username": "alice", "password": srv.users["alice"]})
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    assert "Too many failed sign-ins" in r.text
    assert (
        requests.get(f"{srv.url}/auth/token", auth=("alice", srv.users["alice"])).status_code == 429
    )


def test_idle_sessions_end(strict_server):
    c = Console(strict_server.url)
    c.sign_in("victor", strict_server.users["victor"])
    assert c.get("/account").status_code == 200
    time.sleep(7)  # longer than the configured idle timeout of 5 seconds
    assert c.get("/account").status_code == 302


def test_https_sessions_and_connect_panel(strict_server):
    c = Console(strict_server.url)
    r = c.sign_in("mallory", strict_server.users["mallory"])
    assert "; Secure" in r.headers["Set-Cookie"]
    page = c.get("/orgs/other/private")
    assert page.status_code == 200
    assert "podman login -u mallory --password-stdin registry.example.test" in page.text
    assert "tls-verify" not in page.text and "--insecure" not in page.text
    assert "--plain-http" not in page.text
    assert (
        "https://mallory:$CARGOHOLD_PASSWORD@registry.example.test/api/v1/other/private"
        in page.text
    )


def test_robots_tokens_grants_visibility_and_trust_policies(console_for, server):
    admin = console_for("admin")
    robot = unique("bot")
    r = admin.follow(admin.post("/orgs/acme/robots", {"name": robot, "description": "<i>CI</i>"}))
    assert f"Robot acme+{robot} created" in r.text and "&lt;i&gt;CI&lt;/i&gt;" in r.text
    r = admin.follow(
        admin.post(
            "/orgs/acme/grants",
            {"registry": "second", "username": f"acme+{robot}", "role": "writer"},
        )
    )
    assert f"acme+{robot} is writer on acme/second" in r.text
    r = admin.follow(
        admin.post(
            f"/orgs/acme/robots/{robot}/tokens", {"token_name": "deploy", "scope": "read-write"}
        )
    )
    secret = r.text.split('id="token-secret"><code>')[1].split("<")[0]
    assert "shown this once" in r.text and secret.startswith("chp_")
    assert secret not in admin.get("/orgs/acme").text
    # The robot's token works where it was granted, through the protocols.
    oci = OCIClient(server.url, f"acme+{robot}", secret)
    oci.push_image("acme/second/robot/app", "v1", [b"robot layer"])
    page = admin.get("/orgs/acme")
    token_id = page.text.split(f"/orgs/acme/robots/{robot}/tokens/")[1].split("/revoke")[0]
    r = admin.follow(admin.post(f"/orgs/acme/robots/{robot}/tokens/{token_id}/revoke"))
    assert "Token revoked" in r.text
    assert (
        requests.get(f"{server.url}/api/v1/orgs/acme", auth=(f"acme+{robot}", secret)).status_code
        == 401
    )
    bad = admin.follow(
        admin.post(
            f"/orgs/acme/robots/{robot}/tokens", {"token_name": "x", "registries": "other/public"}
        )
    )
    assert "own organisation" in bad.text
    r = admin.follow(admin.post(f"/orgs/acme/second/grants/acme+{robot}/revoke"))
    assert "no longer has a role" in r.text
    r = admin.follow(admin.post(f"/orgs/acme/robots/{robot}/delete"))
    assert f"Robot acme+{robot} deleted" in r.text
    # Gone from the list, here and in the API.
    assert f"<code>acme+{robot}" not in r.text
    listed = requests.get(
        f"{server.url}/api/v1/orgs/acme/robots", auth=("admin", server.admin_password)
    ).json()["robots"]
    assert not [x for x in listed if robot in str(x)]

    name = unique("vis")
    admin.post("/orgs/acme/registries", {"name": name})
    assert console_for().get(f"/orgs/acme/{name}").status_code == 302
    r = admin.follow(admin.post(f"/orgs/acme/{name}/visibility", {"public": "true"}))
    assert f"acme/{name} is now public" in r.text
    assert console_for().get(f"/orgs/acme/{name}").status_code == 200
    assert (
        "Choose public or private" in admin.follow(admin.post(f"/orgs/acme/{name}/visibility")).text
    )
    assert (
        console_for("alice").post(f"/orgs/acme/{name}/visibility", {"public": "false"}).status_code
        == 403
    )

    ci_robot = unique("ci")
    admin.post("/orgs/acme/robots", {"name": ci_robot})
    created = requests.post(
        f"{server.url}/api/v1/orgs/acme/trust-policies",
        json={
            "name": "gh",
            "robot": ci_robot,
            # An issuer the test server allows (CARGOHOLD_OIDC_ISSUERS in tests/conftest.py).
            "issuer": "http://127.0.0.1:8443",
            "audience": "cargohold",
            "claims": {"repository": "acme/<script>*"},
        },
        auth=("admin", server.admin_password),
    )
    assert created.status_code == 201, created.text
    page = admin.get("/orgs/acme")
    assert "acme/&lt;script&gt;*" in page.text
    r = admin.follow(admin.post(f"/orgs/acme/trust-policies/{created.json()['id']}/delete"))
    assert "Trust policy deleted" in r.text

    # The same from the console's own form, claims one per line.
    form = {
        "name": "gl",
        "robot": ci_robot,
        "issuer": "http://127.0.0.1:8443",
        "audience": "cargohold",
        "claims": "project_path = acme/<b>app</b>\r\nref_type=branch\n\n",
    }
    r = admin.follow(admin.post("/orgs/acme/trust-policies", form))
    assert "Trust policy gl created" in r.text
    assert "<code>project_path</code> = <code>acme/&lt;b&gt;app&lt;/b&gt;</code>" in r.text
    assert "<code>ref_type</code> = <code>branch</code>" in r.text
    for claims, message in (("", "at least one required claim"), ("no equals sign", "name = ")):
        bad = admin.follow(admin.post("/orgs/acme/trust-policies", {**form, "claims": claims}))
        assert message in bad.text
    assert console_for("alice").post("/orgs/acme/trust-policies", form).status_code == 403


# ---- the Connect panel's Python publishing commands, run as shown ----------------------------


def snippet_text(page: str, client: str) -> str:
    block = page.split(f'id="snippet-{client}"><code>', 1)[1].split("</code>", 1)[0]
    return unescape(block)


@pytest.mark.parametrize("client", ["twine", "uv"])
def test_connect_panel_publish_commands_run_as_shown(console_for, server, tmp_path, client):
    page = console_for("alice").get("/orgs/acme/main").text
    text = snippet_text(page, client)
    command = next(line for line in text.splitlines() if line.startswith(f"{client} "))
    project = unique(f"{client}snippet")
    (tmp_path / "dist").mkdir()
    make_wheel(tmp_path / "dist", project, "1.0")
    env = {
        **clean_env(tmp_path / "home"),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "CARGOHOLD_PASSWORD": server.users["alice"],
    }
    proc = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", command],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, f"{command}\n{proc.stdout}\n{proc.stderr}"
    r = requests.get(
        f"{server.url}/api/v1/acme/main/python/simple/{project}/",
        auth=("alice", server.users["alice"]),
    )
    assert r.status_code == 200 and "1.0" in r.text


def test_wrong_current_passwords_count_as_failed_logins(strict_server):
    """The count a wrong current password adds is committed with the request that refuses it."""
    name, password = new_user(strict_server, "guess")
    c = Console(strict_server.url)
    c.sign_in(name, password)
    for _ in range(3):
        r = c.post(
            "/account/password",
            {"current_password": "wrong", "new_password": "x" * 12, "confirm_password": "x" * 12},
        )
        assert r.status_code == 302
    r = requests.get(f"{strict_server.url}/auth/token", auth=(name, password))
    assert r.status_code == 429


# ---- the session cookie is the console's credential, nowhere else -------------------------------


def test_session_cookie_authorizes_console_routes_only(console_for, server):
    """A browser sends the cookie with every request to this host, cross-site ones included: on
    the API, the registry and the Python index it must count for nothing."""
    c = console_for("alice")
    assert c.get("/orgs/acme/main").status_code == 200
    for path in (
        "/api/v1/user",
        "/api/v1/orgs/acme",
        "/v2/_catalog",
        "/v2/acme/main/console/app/tags/list",
        "/api/v1/acme/main/python/simple/",
    ):
        r = c.http.get(server.url + path, allow_redirects=False)
        assert r.status_code == 401, (path, r.status_code, r.text[:200])
    r = c.http.post(server.url + "/api/v1/tokens", json={"name": "by-cookie"})
    assert r.status_code == 401
    # And on console routes the Authorization header proves nothing: the session alone does.
    r = requests.get(
        server.url + "/orgs/acme/main",
        auth=("alice", server.users["alice"]),
        allow_redirects=False,
    )
    assert r.status_code == 302 and "/sign-in" in r.headers["Location"]
