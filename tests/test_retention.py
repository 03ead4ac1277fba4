"""Retention policies over HTTP, on SQLite + filesystem or (CARGOHOLD_TEST_BACKEND=postgres)
PostgreSQL + S3: keep the newest N tags, untagged manifests past their age, protection patterns
and immutability rules, referrers going with their subject, shared index children kept, the
dry-run report changing nothing, the worker's pass, bad input and who may manage policies."""

from __future__ import annotations

import json
import subprocess

import pytest
import requests

from tests.console.conftest import Console
from tests.pypi.dists import make_wheel, upload
from tests.support.client import OCIClient, digest_of
from tests.support.server import BIN, ROOT, Server, running_server
from tests.test_gc import INDEX, MANIFEST, exists, push_index, push_referrer, stored

API = "/api/v1/orgs/acme/registries/{registry}"


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    env = {"CARGOHOLD_GC_GRACE_SECONDS": "0"}
    with running_server(tmp_path_factory.mktemp("retention"), env) as server:
        yield server


@pytest.fixture
def reg(srv, request) -> str:
    """A registry of acme of the test's own, so one test's policies never meet another's."""
    name = request.node.name.removeprefix("test_").replace("_", "-")[:40].strip("-")
    r = requests.post(
        f"{srv.url}/api/v1/orgs/acme/registries", json={"name": name}, auth=admin(srv), timeout=30
    )
    assert r.status_code == 201, r.text
    return name


def admin(srv: Server) -> tuple[str, str]:
    return ("admin", srv.users["admin"])


def api(srv: Server, registry: str, path: str = "") -> str:
    return srv.url + API.format(registry=registry) + path


def add_policy(srv: Server, registry: str, **body) -> dict:
    r = requests.post(api(srv, registry, "/retention-policies"), json=body, auth=admin(srv))
    assert r.status_code == 201, r.text
    return r.json()


def report(srv: Server, registry: str) -> dict:
    r = requests.get(api(srv, registry, "/retention-report"), auth=admin(srv), timeout=60)
    assert r.status_code == 200, r.text
    return r.json()


def tags(c: OCIClient, repo: str) -> set[str]:
    r = c.request("GET", f"/v2/{repo}/tags/list")
    assert r.status_code == 200, r.text
    return set(r.json()["tags"] or [])


def snapshot(srv: Server) -> list:
    """Every tag and manifest row: what a dry run must leave exactly as it was."""
    return [
        srv.sql("SELECT repository_id, name, manifest_id FROM tags ORDER BY id"),
        srv.sql("SELECT id, digest FROM manifests ORDER BY id"),
    ]


def retention_run(srv: Server, reg: str) -> list[dict]:
    out = srv.flask("retention", "run", "--registry", f"acme/{reg}")
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


# ---- keep the newest N tags -----------------------------------------------------------------


def test_keep_newest_tags_with_protection_and_immutability(srv, reg):
    c = OCIClient(srv.url, *admin(srv))
    repo, other = f"acme/{reg}/keep/app", f"acme/{reg}/elsewhere/app"
    images = {}
    for i in range(1, 7):
        images[f"v{i}"], manifest = c.push_image(repo, f"v{i}", [f"keep layer {i}".encode()])
        if i == 3:  # `stable` (not matching v*, so not counted) points at v3's manifest
            assert c.push_manifest(repo, "stable", manifest).status_code == 201
        c.push_image(other, f"v{i}", [f"other layer {i}".encode()])
    c.push_image(repo, "latest", [b"keep latest"])
    r = requests.post(api(srv, reg, "/immutable-tags"), json={"pattern": "v2"}, auth=admin(srv))
    assert r.status_code == 201, r.text
    policy = add_policy(
        srv, reg, repository_pattern="keep/*", tag_pattern="v*", keep_count=2, protect_pattern="v1"
    )
    assert policy["keep_count"] == 2 and policy["enabled"] is True

    before = snapshot(srv)
    plan = report(srv, reg)
    assert snapshot(srv) == before  # a dry run changes nothing
    assert plan["dry_run"] is True and plan["truncated"] is False
    removed = {(x["kind"], x.get("tag") or x["digest"]) for x in plan["removed"]}
    # v1 protected, v2 immutable: neither counts nor goes; v5, v6 are the two newest; v3's
    # manifest stays with `stable`.
    assert removed == {("tag", "v3"), ("tag", "v4"), ("manifest", images["v4"])}
    assert all(x["policy"] == policy["id"] and x["repository"] == repo for x in plan["removed"])
    manifest_entry = next(x for x in plan["removed"] if x["kind"] == "manifest")
    assert "2 most recently pushed tags matching 'v*'" in manifest_entry["reason"]

    lines = retention_run(srv, reg)
    assert {(x["kind"], x.get("tag") or x["digest"]) for x in lines} == removed
    assert tags(c, repo) == {"v1", "v2", "v5", "v6", "stable", "latest"}
    assert tags(c, other) == {f"v{i}" for i in range(1, 7)}
    assert not exists(c, repo, images["v4"])
    assert exists(c, repo, images["v3"])
    assert report(srv, reg)["removed"] == []  # applied: nothing left to do
    srv.flask("gc", "run")
    assert digest_of(b"keep layer 4") not in stored(srv)
    assert digest_of(b"keep layer 3") in stored(srv)
    listed = requests.get(api(srv, reg, "/retention-policies"), auth=admin(srv)).json()["policies"]
    assert listed[0]["last_run_removed"] == 3 and listed[0]["last_run_at"]
    # Every removal is in the audit log, as the policy's.
    r = requests.get(
        f"{srv.url}/api/v1/orgs/acme/audit",
        params={"repository": repo, "limit": 100},
        auth=admin(srv),
        timeout=60,
    )
    assert r.status_code == 200, r.text
    by_policy = {
        (e["action"], e["reference"])
        for e in r.json()["events"]
        if e["actor"]["name"] == f"retention-policy:{policy['id']}"
    }
    assert {("tag.delete", "v3"), ("tag.delete", "v4"), ("manifest.delete", images["v4"])} <= (
        by_policy
    ), by_policy


# ---- untagged manifests, referrers, index children ------------------------------------------


def untag(c: OCIClient, repo: str, tag: str) -> None:
    assert c.request("DELETE", f"/v2/{repo}/manifests/{tag}").status_code == 202


def age(srv: Server, *digests: str) -> None:
    for digest in digests:
        srv.sql("UPDATE manifests SET created_at = '2000-01-01 00:00:00' WHERE digest = ?", digest)


def test_untagged_manifests_referrers_and_shared_children(srv, reg):
    c = OCIClient(srv.url, *admin(srv))
    repo = f"acme/{reg}/untagged/app"
    old, _ = c.push_image(repo, "old", [b"untagged old"])
    signature = push_referrer(c, repo, old, "signature")
    young, _ = c.push_image(repo, "young", [b"untagged young"])
    tagged, _ = c.push_image(repo, "tagged", [b"untagged tagged"])
    kept_sbom = push_referrer(c, repo, tagged, "sbom")  # its subject stays, so it does
    children = {}
    for name in ("c1", "c2", "c3"):
        children[name], _ = c.push_image(repo, name, [f"child {name}".encode()])
    kept_index = push_index(c, repo, "multi", [children["c1"], children["c2"]])
    doomed_index = push_index(c, repo, "doomed", [children["c2"], children["c3"]])
    for tag in ("old", "young", "c1", "c2", "c3", "doomed"):
        untag(c, repo, tag)
    age(srv, old, signature, tagged, kept_sbom, doomed_index, *children.values())
    policy = add_policy(srv, reg, untagged_days=7)

    before = snapshot(srv)
    plan = report(srv, reg)
    assert snapshot(srv) == before
    reasons = {x["digest"]: x["reason"] for x in plan["removed"]}
    assert reasons == {
        old: "untagged for more than 7 days",
        signature: f"referrer of {old}",
        doomed_index: "untagged for more than 7 days",
        children["c3"]: f"child of {doomed_index}",
    }
    assert {x["kind"] for x in plan["removed"]} == {"manifest"}
    assert {x["policy"] for x in plan["removed"]} == {policy["id"]}

    retention_run(srv, reg)
    for gone in reasons:
        assert not exists(c, repo, gone), gone
    for kept in (young, tagged, kept_sbom, kept_index, children["c1"], children["c2"]):
        assert exists(c, repo, kept), kept
    srv.flask("gc", "run")
    assert digest_of(b"untagged old") not in stored(srv)
    assert digest_of(b"child c3") not in stored(srv)
    assert digest_of(b"child c2") in stored(srv)
    assert c.request("GET", f"/v2/{repo}/manifests/multi", headers={"Accept": INDEX}).ok


def test_a_tag_that_stays_keeps_its_subject_and_the_whole_graph(srv, reg):
    """A manifest beyond N is kept while a referrer of it carries a protected tag."""
    c = OCIClient(srv.url, *admin(srv))
    repo = f"acme/{reg}/graph/app"
    first, _ = c.push_image(repo, "b1", [b"graph first"])
    sig = push_referrer(c, repo, first, "signature")
    body = c.request("GET", f"/v2/{repo}/manifests/{sig}", headers={"Accept": MANIFEST})
    r = c.request(
        "PUT",
        f"/v2/{repo}/manifests/sig-b1",
        data=body.content,
        headers={"Content-Type": MANIFEST},
    )
    assert r.status_code == 201, r.text
    c.push_image(repo, "b2", [b"graph second"])
    add_policy(srv, reg, tag_pattern="b*", keep_count=1, protect_pattern="sig-*")
    plan = report(srv, reg)
    assert [(x["kind"], x.get("tag")) for x in plan["removed"]] == [("tag", "b1")]
    retention_run(srv, reg)
    assert exists(c, repo, first) and exists(c, repo, sig)
    assert tags(c, repo) == {"b2", "sig-b1"}


def test_python_repositories_and_disabled_policies_are_left_alone(srv, reg, tmp_path):
    c = OCIClient(srv.url, *admin(srv))
    for i in range(3):
        wheel = make_wheel(tmp_path, "retained", f"1.{i}")
        r = upload(f"{srv.url}/api/v1/acme/{reg}/python/", wheel, "retained", f"1.{i}", admin(srv))
        assert r.status_code == 200, r.text
    for i in range(3):
        c.push_image(f"acme/{reg}/disabled/app", f"t{i}", [f"disabled {i}".encode()])
    policy = add_policy(srv, reg, keep_count=1)
    r = requests.patch(
        api(srv, reg, f"/retention-policies/{policy['id']}"),
        json={"enabled": False},
        auth=admin(srv),
    )
    assert r.status_code == 200 and r.json()["enabled"] is False
    assert report(srv, reg)["removed"] == []
    assert retention_run(srv, reg) == []
    assert tags(c, f"acme/{reg}/disabled/app") == {"t0", "t1", "t2"}
    requests.patch(
        api(srv, reg, f"/retention-policies/{policy['id']}"),
        json={"enabled": True},
        auth=admin(srv),
    ).raise_for_status()
    removed = retention_run(srv, reg)
    assert {x["repository"] for x in removed} == {f"acme/{reg}/disabled/app"}
    simple = requests.get(
        f"{srv.url}/api/v1/acme/{reg}/python/simple/retained/", auth=admin(srv), timeout=30
    )
    assert simple.status_code == 200 and simple.text.count("retained-1.") >= 3


def test_the_worker_applies_due_policies_once_per_interval(srv, reg):
    c = OCIClient(srv.url, *admin(srv))
    repo = f"acme/{reg}/worker/app"
    for i in range(3):
        c.push_image(repo, f"w{i}", [f"worker layer {i}".encode()])
    policy = add_policy(srv, reg, keep_count=2)
    srv.flask("gc", "worker", "--once")
    assert tags(c, repo) == {"w1", "w2"}
    assert digest_of(b"worker layer 0") not in stored(srv)
    (last,) = srv.sql("SELECT last_run_at FROM retention_policies WHERE id = ?", policy["id"])[0]
    c.push_image(repo, "w3", [b"worker layer 3"])
    # Within the interval (an hour by default) the next pass leaves the policy alone.
    srv.flask("gc", "worker", "--once")
    assert tags(c, repo) == {"w1", "w2", "w3"}
    assert srv.sql("SELECT last_run_at FROM retention_policies WHERE id = ?", policy["id"]) == [
        (last,)
    ]


# ---- the management API: bad input, authorization -------------------------------------------


def test_policy_changes_and_bad_input(srv, reg):
    url = api(srv, reg, "/retention-policies")
    bad = [
        {},
        {"keep_count": -1},
        {"keep_count": 0},
        {"keep_count": "3"},
        {"keep_count": True},
        {"keep_count": 100_001},
        {"untagged_days": 0},
        {"untagged_days": 1.5},
        {"keep_count": 1, "tag_pattern": "v[0-9]"},
        {"keep_count": 1, "tag_pattern": ""},
        {"keep_count": 1, "protect_pattern": 5},
        {"keep_count": 1, "protect_pattern": "a" * 129},
        {"keep_count": 1, "repository_pattern": "Team/*"},
        {"keep_count": 1, "repository_pattern": "a" * 256},
        {"keep_count": 1, "enabled": "yes"},
        {"keep_count": 1, "colour": "blue"},
    ]
    for body in bad:
        r = requests.post(url, json=body, auth=admin(srv), timeout=30)
        assert r.status_code == 400, (body, r.text)
        assert r.json()["errors"][0]["code"] == "INVALID", (body, r.text)
    r = requests.post(url, data="[1]", auth=admin(srv), timeout=30)
    assert r.status_code == 400
    r = requests.post(
        url, json={"keep_count": 1, "repository_pattern": "cargohold.pypi/*"}, auth=admin(srv)
    )
    assert r.status_code == 400 and "Python package" in r.text

    policy = add_policy(srv, reg, keep_count=5, untagged_days=30, protect_pattern="release-*")
    one = f"{url}/{policy['id']}"
    r = requests.patch(one, json={"keep_count": None}, auth=admin(srv))
    assert r.status_code == 200 and r.json()["keep_count"] is None
    assert r.json()["untagged_days"] == 30 and r.json()["protect_pattern"] == "release-*"
    r = requests.patch(one, json={"untagged_days": None}, auth=admin(srv))
    assert r.status_code == 400  # neither rule left
    r = requests.patch(one, json={"keep_count": -3}, auth=admin(srv))
    assert r.status_code == 400
    assert requests.patch(f"{url}/424242", json={}, auth=admin(srv)).status_code == 404
    assert requests.delete(f"{url}/424242", auth=admin(srv)).status_code == 404
    # A policy of another registry is not reachable through this one.
    assert (
        requests.delete(
            api(srv, "second", f"/retention-policies/{policy['id']}"), auth=admin(srv)
        ).status_code
        == 404
    )
    for limit in ("0", "abc", "10001", "-1", "²", "9" * 50):
        r = requests.get(api(srv, reg, f"/retention-report?limit={limit}"), auth=admin(srv))
        assert r.status_code == 400, limit
    r = requests.get(
        srv.url + "/api/v1/orgs/acme/registries/nothing/retention-report", auth=admin(srv)
    )
    assert r.status_code == 404
    assert requests.delete(one, auth=admin(srv)).status_code == 204
    assert requests.get(url, auth=admin(srv)).json()["policies"] == []

    bad_cli = subprocess.run(
        [str(BIN / "flask"), "retention", "run", "--registry", "no-slash"],
        cwd=ROOT,
        env=srv.env,
        capture_output=True,
        text=True,
    )
    assert bad_cli.returncode == 2 and "ORG/REGISTRY" in bad_cli.stderr


def test_only_organisation_admins_manage_policies(srv, reg):
    policy = add_policy(srv, reg, keep_count=3)
    urls = [
        ("GET", api(srv, reg, "/retention-policies")),
        ("POST", api(srv, reg, "/retention-policies")),
        ("PATCH", api(srv, reg, f"/retention-policies/{policy['id']}")),
        ("DELETE", api(srv, reg, f"/retention-policies/{policy['id']}")),
        ("GET", api(srv, reg, "/retention-report")),
    ]
    for method, url in urls:
        assert requests.request(method, url, json={}, timeout=30).status_code == 401
        for user in ("alice", "victor"):
            r = requests.request(method, url, json={}, auth=(user, srv.users[user]), timeout=30)
            assert r.status_code == 403, (method, url, user, r.text)
        r = requests.request(method, url, json={}, auth=("mallory", srv.users["mallory"]))
        assert r.status_code in (403, 404), (method, url, r.text)
    assert requests.get(urls[0][1], auth=admin(srv)).json()["policies"][0]["id"] == policy["id"]


# ---- the console ------------------------------------------------------------------------------


def test_console_shows_policies_and_the_dry_run_to_admins(srv, reg):
    c = OCIClient(srv.url, *admin(srv))
    repo = f"acme/{reg}/shown/app"
    for i in range(2):
        c.push_image(repo, f"s{i}", [f"shown {i}".encode()])
    policy = add_policy(srv, reg, keep_count=1, tag_pattern="s*", protect_pattern="keep-*")
    page = f"/orgs/acme/{reg}"
    admin_console = Console(srv.url)
    admin_console.sign_in("admin", srv.users["admin"])
    html = admin_console.get(page).text
    assert "Retention policies" in html and "<code>keep-*</code>" in html
    assert "tag <code>s0</code>" not in html  # the report only on request
    html = admin_console.get(page + "?retention=report").text
    assert "tag <code>s0</code>" in html
    assert "beyond the 1 most recently pushed tags matching &#39;s*&#39;" in html
    assert f"<td>{policy['id']}</td>" in html
    assert tags(c, repo) == {"s0", "s1"}  # the console's dry run changes nothing
    for user in ("alice", "victor"):
        viewer = Console(srv.url)
        viewer.sign_in(user, srv.users[user])
        shown = viewer.get(page + "?retention=report")
        assert shown.status_code == 200 and "Retention policies" not in shown.text


# ---- scale: selection through indexes ----------------------------------------------------------


def test_selection_reads_tags_and_manifests_through_indexes(tmp_path):
    """Every query a run makes, on a repository of 300 tags, is planned by SQLite without
    reading all its tags or manifests: the newest tags come from (repository, updated_at), old
    manifests from (repository, created_at), what names a manifest from the references of
    its digest."""
    from datetime import timedelta

    from flask_migrate import upgrade
    from sqlalchemy import event, insert

    from app import create_app
    from app.access import tenancy
    from app.config import Settings
    from app.models import Blob, Manifest, Repository, RetentionPolicy, Tag, db
    from app.models.base import utcnow
    from app.models.transaction import unit_of_work
    from app.registry import retention

    app = create_app(Settings.from_env({"CARGOHOLD_DATA_DIR": str(tmp_path)}))
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        old = utcnow() - timedelta(days=30)
        with unit_of_work():
            user = tenancy.create_user("scale", "scale-password-1")
            tenancy.create_org("big", user)
            reg = tenancy.create_registry("big", "main")
            repo = Repository(registry_id=reg.id, name="big/main/app")
            db.session.add(repo)
            db.session.flush()
            digests = [f"sha256:{i:064x}" for i in range(300)]
            db.session.execute(insert(Blob), [{"digest": d, "size": 1} for d in digests])
            for i, digest in enumerate(digests):
                manifest = Manifest(
                    repository_id=repo.id,
                    digest=digest,
                    media_type=MANIFEST,
                    size=1,
                    created_at=old + timedelta(seconds=i),
                )
                db.session.add(manifest)
                db.session.flush()
                if i % 3:  # a third stay untagged
                    stamp = old + timedelta(seconds=i)
                    db.session.add(
                        Tag(
                            repository_id=repo.id,
                            name=f"v{i}",
                            manifest_id=manifest.id,
                            updated_at=stamp,
                        )
                    )
            policy = RetentionPolicy(
                registry_id=reg.id,
                repository_pattern="*",
                tag_pattern="v*",
                keep_count=10,
                untagged_days=7,
                protect_pattern="v1*",
                enabled=True,
                last_run_removed=0,
            )
            db.session.add(policy)
        statements: list[tuple[str, object]] = []

        def record(conn, cursor, statement, params, context, executemany):
            if statement.lstrip().upper().startswith("SELECT"):
                statements.append((statement, params))

        event.listen(db.engine, "before_cursor_execute", record)
        try:
            found = list(retention.apply(policy, "big/main/", dry_run=True))
        finally:
            event.remove(db.engine, "before_cursor_execute", record)
        assert len([r for r in found if r.kind == "tag"]) > 100
        assert len([r for r in found if r.kind == "manifest"]) > 100
        # A full scan, a full sort, or every row of the repository read through its id alone
        # (the newest-first walk of (repository, updated_at) aside: it stops after a batch).
        whole = set()
        conn = db.session.connection()
        for statement, params in statements:
            for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", params).all():
                plan = row[-1]
                if (
                    plan.startswith(("SCAN tags", "SCAN manifests"))
                    or "TEMP B-TREE FOR ORDER BY" in plan
                    or plan.endswith("(repository_id=?)")
                    and "ix_tags_repository_updated" not in plan
                ):
                    whole.add(plan)
        assert not whole, whole
