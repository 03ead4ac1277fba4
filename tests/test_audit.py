"""The audit log over HTTP, on SQLite + filesystem or (CARGOHOLD_TEST_BACKEND=postgres)
PostgreSQL + S3: every kind of write and security event, who and from where, refusals kept
though their request rolls back, filters, keyset pages, the JSON-lines export, who may read
it, the per-registry pull audit, and the retention purge."""

from __future__ import annotations

import json
import subprocess

import pytest
import requests

from tests.console.conftest import Console
from tests.pypi.dists import make_wheel, unique, upload
from tests.support.client import OCIClient
from tests.support.oidc_issuer import Issuer
from tests.support.server import BIN, ROOT, running_server

API = "/api/v1"


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    env = {"CARGOHOLD_OIDC_ISSUERS": "http://127.0.0.1:*", "CARGOHOLD_GC_GRACE_SECONDS": "0"}
    with running_server(tmp_path_factory.mktemp("audit"), env) as server:
        yield server


def auth(srv, user: str) -> tuple[str, str]:
    return (user, srv.users[user])


def call(srv, user: str | None, method: str, path: str, **kw) -> requests.Response:
    return requests.request(
        method, srv.url + API + path, auth=auth(srv, user) if user else None, timeout=60, **kw
    )


def events(srv, path: str = "/orgs/acme/audit", user: str = "admin", **params) -> list[dict]:
    r = call(srv, user, "GET", path, params={"limit": 500, **params})
    assert r.status_code == 200, r.text
    return r.json()["events"]


def one(found: list[dict], **wanted) -> dict:
    hits = [e for e in found if all(e.get(k) == v for k, v in wanted.items())]
    assert hits, (wanted, [(e["action"], e["reference"]) for e in found][:20])
    return hits[0]


# ---- pushes, tag moves, deletions ------------------------------------------------------------


def test_push_tag_move_and_deletes_name_who_what_and_where(srv):
    repo = f"acme/main/{unique('audit')}"
    alice = OCIClient(srv.url, *auth(srv, "alice"))
    first, _ = alice.push_image(repo, "latest", [b"audit one"])
    second, _ = alice.push_image(repo, "latest", [b"audit two"])
    assert alice.request("DELETE", f"/v2/{repo}/manifests/latest").status_code == 202
    assert alice.request("DELETE", f"/v2/{repo}/manifests/{first}").status_code == 202

    found = events(srv, repository=repo)
    push = one(found, action="manifest.push", reference=first)
    assert push["actor"]["name"] == "alice" and push["actor"]["kind"] == "user"
    assert push["actor"]["address"] == "127.0.0.1"
    assert push["org"] == "acme" and push["registry"] == "main" and push["result"] == "ok"
    assert push["details"]["tags"] == ["latest"]
    assert one(found, action="tag.create", reference="latest")["details"]["digest"] == first
    move = one(found, action="tag.move", reference="latest")
    assert move["details"] == {"from": first, "to": second}
    assert one(found, action="tag.delete", reference="latest")["details"]["digest"] == second
    assert one(found, action="manifest.delete", reference=first)["actor"]["name"] == "alice"
    # Newest first.
    assert [e["id"] for e in found] == sorted((e["id"] for e in found), reverse=True)


def test_an_immutable_tag_refusal_is_kept_though_the_push_fails(srv):
    repo = f"acme/second/{unique('imm')}"
    admin = OCIClient(srv.url, *auth(srv, "admin"))
    admin.push_image(repo, "v1", [b"imm one"])
    rules = "/orgs/acme/registries/second/immutable-tags"
    r = call(srv, "admin", "POST", rules, json={"pattern": "v*"})
    assert r.status_code == 201
    other, manifest = admin.push_image(repo, "other", [b"imm two"])
    r = admin.push_manifest(repo, "v1", manifest)
    assert r.status_code == 403
    refused = one(events(srv, repository=repo, result="denied"), action="tag.move")
    assert "immutable" in refused["details"]["reason"]
    # The refused move left no tag.move "ok" behind.
    assert not [e for e in events(srv, repository=repo, action="tag.move") if e["result"] == "ok"]
    created = one(events(srv, action="immutability.create"), registry="second")
    assert created["details"]["pattern"] == "v*" and created["actor"]["name"] == "admin"
    assert other
    r = call(srv, "admin", "DELETE", f"{rules}/{created['details']['id']}")
    assert r.status_code == 204
    one(events(srv, action="immutability.delete"), registry="second")


def test_the_repository_rows_keep_who_pushed(srv):
    repo = f"acme/main/{unique('pusher')}"
    OCIClient(srv.url, *auth(srv, "alice")).push_image(repo, "v1", [b"pushed by alice"])
    rows = srv.sql(
        "SELECT t.pushed_by, m.pushed_by FROM tags t JOIN manifests m ON m.id = t.manifest_id "
        "JOIN repositories r ON r.id = t.repository_id WHERE r.name = ?",
        repo,
    )
    assert rows == [("alice", "alice")]


# ---- logins ----------------------------------------------------------------------------------


def test_logins_fail_and_succeed_on_every_path(srv):
    who = "victor"
    bad = (who, "not-the-password")
    r = requests.get(f"{srv.url}/auth/token", auth=bad, timeout=30)
    assert r.status_code == 401
    r = requests.get(f"{srv.url}{API}/acme/main/python/simple/", auth=bad, timeout=30)
    assert r.status_code == 401
    assert requests.get(f"{srv.url}{API}/user", auth=bad, timeout=30).status_code == 401
    console = Console(srv.url)
    console.get("/sign-in")
    assert console.post("/sign-in", {"username": who, "password": "wrong"}).status_code == 401
    console.sign_in(who, srv.users[who])
    assert requests.get(f"{srv.url}/auth/token", auth=auth(srv, who), timeout=30).ok

    found = events(srv, "/admin/audit", org="-", action="login", actor=who)
    failed = {e["details"]["method"] for e in found if e["result"] == "denied"}
    assert failed >= {"token-service", "pypi", "api", "console"}
    ok = {e["details"]["method"] for e in found if e["result"] == "ok"}
    assert ok >= {"console", "token-service"}
    assert all(e["actor"]["address"] == "127.0.0.1" for e in found)


# ---- tokens, members, invitations, robots, trust policies, registries ----------------------


def test_token_created_first_used_and_revoked(srv):
    r = call(srv, "alice", "POST", "/tokens", json={"name": "audit-token"})
    assert r.status_code == 201
    token, token_id = r.json()["token"], r.json()["id"]
    for _ in range(2):
        assert requests.get(f"{srv.url}{API}/user", auth=("alice", token), timeout=30).ok
    assert call(srv, "alice", "DELETE", f"/tokens/{token_id}").status_code == 204
    found = events(srv, "/admin/audit", org="-", action="token.")
    mine = [e for e in found if e["reference"] == str(token_id)]
    assert sorted(e["action"] for e in mine) == ["token.create", "token.first_use", "token.revoke"]
    used = one(mine, action="token.first_use")
    assert used["actor"]["token_id"] == token_id and used["actor"]["name"] == "alice"
    assert token not in json.dumps(found)


def test_membership_invitation_robot_and_registry_changes(srv):
    name = unique("aud")
    robot = f"acme+{name}"
    assert call(srv, "admin", "PUT", "/orgs/acme/members/mallory", json={"role": "viewer"}).ok
    assert call(srv, "admin", "PUT", "/orgs/acme/members/mallory", json={"role": "writer"}).ok
    assert call(srv, "admin", "DELETE", "/orgs/acme/members/mallory").status_code == 204
    inv = call(
        srv, "admin", "POST", "/orgs/acme/invitations", json={"invitee": "x@y.z", "role": "viewer"}
    )
    assert inv.status_code == 201
    assert call(srv, "admin", "DELETE", f"/orgs/acme/invitations/{inv.json()['id']}").ok
    assert call(srv, "admin", "POST", "/orgs/acme/robots", json={"name": name}).status_code == 201
    grant = f"/orgs/acme/registries/main/grants/{robot}"
    assert call(srv, "admin", "PUT", grant, json={"role": "writer"}).ok
    assert call(srv, "admin", "DELETE", grant).status_code == 204
    reg = unique("reg")
    assert call(srv, "admin", "POST", "/orgs/acme/registries", json={"name": reg}).ok
    assert call(srv, "admin", "PATCH", f"/orgs/acme/registries/{reg}", json={"public": True}).ok
    assert call(srv, "admin", "DELETE", f"/orgs/acme/robots/{name}").status_code == 204

    found = events(srv)
    roles = [e["details"] for e in found if e["action"] == "member.set"]
    assert {"member": "mallory", "role": "writer", "previous_role": "viewer"} in roles
    assert {"member": "mallory", "role": "viewer", "previous_role": None} in roles
    one(found, action="member.remove")
    assert one(found, action="invitation.create")["details"]["invitee"] == "x@y.z"
    one(found, action="invitation.cancel")
    assert one(found, action="robot.create")["details"]["robot"] == robot
    one(found, action="robot.delete")
    assert one(found, action="registry.grant")["details"] == {"grantee": robot, "role": "writer"}
    one(found, action="registry.revoke")
    one(found, action="registry.create", registry=reg)
    vis = one(found, action="registry.visibility", registry=reg)
    assert vis["details"] == {"public": True, "previous": False}


def test_ci_job_claims_name_the_workflow(srv):
    issuer = Issuer()
    try:
        name = unique("ci")
        robot = f"acme+{name}"
        assert call(srv, "admin", "POST", "/orgs/acme/robots", json={"name": name}).ok
        grant = f"/orgs/acme/registries/main/grants/{robot}"
        assert call(srv, "admin", "PUT", grant, json={"role": "writer"}).ok
        policy = {
            "name": "main",
            "robot": robot,
            "issuer": issuer.url,
            "audience": "cargohold",
            "claims": {"repository": "acme/*"},
        }
        r = call(srv, "admin", "POST", "/orgs/acme/trust-policies", json=policy)
        assert r.status_code == 201
        repo = f"acme/main/{unique('ci')}"
        id_token = issuer.token(workflow="release", job_workflow_ref="acme/app/.github/w.yml@main")
        OCIClient(srv.url, robot, id_token).push_image(repo, "build-1", [b"from ci"])
        r = requests.post(
            f"{srv.url}{API}/oidc/token", json={"robot": robot, "id_token": id_token}, timeout=30
        )
        assert r.status_code == 200
    finally:
        issuer.close()
    push = one(events(srv, repository=repo), action="manifest.push")
    assert push["actor"]["name"] == robot and push["actor"]["kind"] == "robot"
    ci = push["actor"]["ci"]
    assert ci["iss"] == issuer.url and ci["repository"] == "acme/app"
    assert ci["workflow"] == "release" and ci["sub"].startswith("repo:acme/app")
    # The exchange's token is created by the robot, with the job's claims.
    assert created_actor(srv, robot)["ci"]["workflow"] == "release"
    assert one(events(srv), action="trust_policy.create")["details"]["robot"] == robot


def created_actor(srv, robot: str) -> dict:
    """The actor of the exchange's token.create event (the robot, with the job's claims)."""
    for e in events(srv, action="token.create"):
        if e["actor"]["name"] == robot:
            return e["actor"]
    raise AssertionError("no token.create by the robot")


# ---- Python packages and the pull audit switch -----------------------------------------------


def test_python_upload_yank_unyank_delete_and_downloads(srv, tmp_path):
    project = unique("auditpkg")
    base = f"{srv.url}{API}/acme/main/python"
    wheel = make_wheel(tmp_path, project, "1.0")
    assert upload(f"{base}/", wheel, project, "1.0", auth(srv, "alice")).status_code == 200
    files = f"{base}/projects/{project}/files/{wheel.name}"
    r = requests.post(f"{files}/yank", json={"reason": "broken"}, auth=auth(srv, "alice"))
    assert r.ok
    assert requests.delete(f"{files}/yank", auth=auth(srv, "alice"), timeout=30).ok
    download = f"{base}/files/{project}/{wheel.name}"
    assert requests.get(download, auth=auth(srv, "victor"), timeout=30).ok
    settings = "/orgs/acme/registries/main/audit-settings"
    assert call(srv, "admin", "GET", settings).json()["audit_pulls"] is False
    r = call(srv, "admin", "PUT", settings, json={"audit_pulls": True})
    assert r.status_code == 200 and r.json()["audit_pulls"] is True
    try:
        assert requests.get(download, auth=auth(srv, "victor"), timeout=30).ok
    finally:
        call(srv, "admin", "PUT", settings, json={"audit_pulls": False})
    assert requests.delete(files, auth=auth(srv, "alice"), timeout=30).ok

    found = [e for e in events(srv, action="python.") if e["reference"] == wheel.name]
    actions = [e["action"] for e in reversed(found)]
    assert actions == [
        "python.upload",
        "python.yank",
        "python.unyank",
        "python.download",
        "python.delete",
    ]
    assert one(found, action="python.yank")["details"]["reason"] == "broken"
    assert one(found, action="python.download")["actor"]["name"] == "victor"
    switched = events(srv, action="registry.audit_settings")
    assert {e["details"]["audit_pulls"] for e in switched} == {True, False}


def test_pulls_are_audited_only_where_switched_on(srv):
    repo = f"acme/second/{unique('pull')}"
    admin = OCIClient(srv.url, *auth(srv, "admin"))
    digest, manifest = admin.push_image(repo, "v1", [b"pulled layer"])
    layer = manifest["layers"][0]["digest"]
    victor = OCIClient(srv.url, *auth(srv, "victor"))

    def pull() -> None:
        assert victor.request("GET", f"/v2/{repo}/manifests/v1").status_code == 200
        assert victor.request("GET", f"/v2/{repo}/blobs/{layer}").status_code in (200, 307)

    pull()
    assert not [e for e in events(srv, repository=repo) if e["action"].endswith(".pull")]
    settings = "/orgs/acme/registries/second/audit-settings"
    bad = call(srv, "admin", "PUT", settings, json={"audit_pulls": "yes"})
    assert bad.status_code == 400 and bad.json()["errors"][0]["code"] == "INVALID"
    assert call(srv, "alice", "PUT", settings, json={"audit_pulls": True}).status_code == 403
    assert call(srv, "admin", "PUT", settings, json={"audit_pulls": True}).ok
    try:
        pull()
        assert victor.request("HEAD", f"/v2/{repo}/manifests/v1").status_code == 200
    finally:
        assert call(srv, "admin", "PUT", settings, json={"audit_pulls": False}).ok
    pulls = [e for e in events(srv, repository=repo) if e["action"].endswith(".pull")]
    assert sorted(e["action"] for e in pulls) == ["blob.pull", "manifest.pull"]
    assert one(pulls, action="manifest.pull")["details"]["digest"] == digest
    assert all(e["actor"]["name"] == "victor" for e in pulls)


# ---- reading the log -------------------------------------------------------------------------


def test_filters_pages_and_bad_filters(srv):
    repo = f"acme/main/{unique('page')}"
    c = OCIClient(srv.url, *auth(srv, "alice"))
    for i in range(5):
        c.push_image(repo, f"t{i}", [f"page {i}".encode()])
    seen: list[int] = []
    r = call(srv, "admin", "GET", "/orgs/acme/audit", params={"repository": repo, "limit": 3})
    body = r.json()
    assert len(body["events"]) == 3 and body["next_before"]
    seen += [e["id"] for e in body["events"]]
    # Events arriving between pages do not shift the next one.
    c.push_image(repo, "late", [b"late"])
    while body["next_before"]:
        r = requests.get(srv.url + body["next"], auth=auth(srv, "admin"), timeout=30)
        assert r.status_code == 200
        body = r.json()
        assert len(body["events"]) <= 3
        seen += [e["id"] for e in body["events"]]
    assert len(seen) == len(set(seen)) == 10  # 5 pushes and 5 tag creations, not the late one
    assert seen == sorted(seen, reverse=True)

    assert all(e["actor"]["name"] == "alice" for e in events(srv, actor="alice"))
    assert events(srv, actor="nobody-at-all") == []
    assert all(e["registry"] == "second" for e in events(srv, registry="second"))
    assert all(e["result"] == "denied" for e in events(srv, result="denied"))
    assert events(srv, since="2999-01-01T00:00:00Z") == []
    assert events(srv, until="2000-01-01T00:00:00+02:00") == []
    assert all(e["action"].startswith("tag.") for e in events(srv, action="tag.*"))
    for params in (
        {"limit": "0"},
        {"limit": "501"},
        {"limit": "ten"},
        {"before": "-1"},
        {"result": "maybe"},
        {"since": "yesterday"},
        {"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
        {"format": "xml"},
        {"action": "x" * 65},
    ):
        r = call(srv, "admin", "GET", "/orgs/acme/audit", params=params)
        assert r.status_code == 400, (params, r.text)
        assert r.json()["errors"][0]["code"] == "INVALID"


def test_jsonl_export(srv):
    repo = f"acme/main/{unique('export')}"
    OCIClient(srv.url, *auth(srv, "alice")).push_image(repo, "v1", [b"exported"])
    r = call(
        srv, "admin", "GET", "/orgs/acme/audit", params={"format": "jsonl", "repository": repo}
    )
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in r.text.splitlines()]
    assert {e["action"] for e in lines} == {"manifest.push", "tag.create"}
    r = call(
        srv,
        "admin",
        "GET",
        "/orgs/acme/audit",
        headers={"Accept": "application/x-ndjson"},
        params={"repository": repo},
    )
    assert [json.loads(line)["id"] for line in r.text.splitlines()] == [e["id"] for e in lines]
    everything = call(srv, "admin", "GET", "/admin/audit", params={"format": "jsonl"})
    assert len(everything.text.splitlines()) >= len(lines)


def test_who_may_read_and_nobody_may_change_it(srv):
    for user, status in (("alice", 403), ("victor", 403), ("mallory", 404), (None, 401)):
        r = call(srv, user, "GET", "/orgs/acme/audit")
        assert r.status_code == status, (user, r.text)
        assert r.json()["errors"]
    assert call(srv, "alice", "GET", "/admin/audit").status_code == 403
    assert call(srv, "mallory", "GET", "/orgs/other/audit").status_code == 200
    # mallory's log holds only her organisation's events.
    assert {e["org"] for e in events(srv, "/orgs/other/audit", user="mallory")} <= {"other"}
    for method in ("PUT", "PATCH", "DELETE", "POST"):
        assert call(srv, "admin", method, "/orgs/acme/audit").status_code == 405
    # A refusal of an authenticated caller is itself a security event.
    refused = [e for e in events(srv, action="access.denied") if e["actor"]["name"] == "alice"]
    assert refused and refused[0]["result"] == "denied"
    assert refused[0]["details"]["action"] == "org:admin"


# ---- garbage collection and retention --------------------------------------------------------


def test_collector_deletions_and_the_retention_purge(srv):
    repo = f"acme/main/{unique('gone')}"
    c = OCIClient(srv.url, *auth(srv, "admin"))
    digest, manifest = c.push_image(repo, "v1", [b"soon garbage " + repo.encode()])
    assert c.request("DELETE", f"/v2/{repo}/manifests/{digest}").status_code == 202
    srv.flask("gc", "run")
    collected = events(srv, "/admin/audit", org="-", action="gc.delete")
    gone = {e["reference"] for e in collected}
    assert {digest, manifest["layers"][0]["digest"]} <= gone
    assert {e["actor"]["kind"] for e in collected} == {"system"}

    # Old events go; recent ones stay.
    total = len(events(srv, "/admin/audit"))
    srv.sql("UPDATE audit_events SET at = '2000-01-01 00:00:00' WHERE action = 'gc.delete'")
    out = srv.flask("audit", "purge", "--days", "30")
    assert f"purged {len(collected)} audit event(s)" in out
    assert events(srv, "/admin/audit", org="-", action="gc.delete") == []
    assert len(events(srv, "/admin/audit")) == total - len(collected)

    # The background worker's pass purges by CARGOHOLD_AUDIT_RETENTION_DAYS (0: never).
    srv.sql("UPDATE audit_events SET at = '2000-01-01 00:00:00' WHERE action = 'org.create'")
    aged = len(events(srv, "/admin/audit", action="org.create"))
    assert aged
    worker = [str(BIN / "flask"), "gc", "worker", "--once"]
    subprocess.run(worker, cwd=ROOT, env=srv.env, check=True, capture_output=True)
    assert len(events(srv, "/admin/audit", action="org.create")) == aged
    env = {**srv.env, "CARGOHOLD_AUDIT_RETENTION_DAYS": "30"}
    subprocess.run(worker, cwd=ROOT, env=env, check=True, capture_output=True)
    assert events(srv, "/admin/audit", action="org.create") == []
    assert "kept for ever" in srv.flask("audit", "purge")
