"""Tag immutability over HTTP: rules through the management API, DENIED on a move or delete of
a protected tag with the rule named, the identical manifest pushed again allowed, bad input."""

from __future__ import annotations

import threading
import time

import pytest
import requests
from sqlalchemy import create_engine, text

from app.models.base import utcnow
from tests.support.client import OCIClient
from tests.support.server import running_server

REPO = "acme/main/immutable/app"


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    with running_server(tmp_path_factory.mktemp("immutable")) as server:
        yield server


def rules_url(srv, registry: str = "main") -> str:
    return f"{srv.url}/api/v1/orgs/acme/registries/{registry}/immutable-tags"


def admin(srv):
    return ("admin", srv.users["admin"])


def test_protected_tags_neither_move_nor_go(srv):
    c = OCIClient(srv.url, "admin", srv.users["admin"])
    first, manifest = c.push_image(REPO, "v1.0", [b"immutable one"])
    r = requests.post(rules_url(srv), json={"pattern": "v*"}, auth=admin(srv), timeout=30)
    assert r.status_code == 201, r.text
    rule_id = r.json()["id"]
    listed = requests.get(rules_url(srv), auth=("victor", srv.users["victor"]), timeout=30)
    assert [x["pattern"] for x in listed.json()] == ["v*"]

    # The identical manifest again is not a move.
    assert c.push_manifest(REPO, "v1.0", manifest).status_code == 201
    # Another manifest under the protected tag is.
    other, _ = c.push_image(REPO, "latest", [b"immutable two"])
    r = c.request(
        "PUT",
        f"/v2/{REPO}/manifests/v1.0",
        data=c.request("GET", f"/v2/{REPO}/manifests/latest").content,
        headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
    )
    assert r.status_code == 403, r.text
    error = r.json()["errors"][0]
    assert error["code"] == "DENIED"
    assert "immutable" in error["detail"] and "'v*'" in error["detail"]
    # Deleting the tag, or the manifest it points at, is refused too.
    assert c.request("DELETE", f"/v2/{REPO}/manifests/v1.0").status_code == 403
    assert c.request("DELETE", f"/v2/{REPO}/manifests/{first}").status_code == 403
    # Unprotected tags move and go as before; a new protected tag may be created.
    c.push_image(REPO, "latest", [b"immutable three"])
    assert c.request("DELETE", f"/v2/{REPO}/manifests/latest").status_code == 202
    c.push_image(REPO, "v2.0", [b"immutable four"])

    r = requests.delete(f"{rules_url(srv)}/{rule_id}", auth=admin(srv), timeout=30)
    assert r.status_code == 204
    assert c.request("DELETE", f"/v2/{REPO}/manifests/v1.0").status_code == 202
    assert other


def test_bad_input(srv):
    for body in (
        {},
        {"pattern": ""},
        {"pattern": "v[0-9]"},
        {"pattern": "a" * 129},
        {"pattern": 5},
        {"pattern": "release/*"},
    ):
        r = requests.post(rules_url(srv), json=body, auth=admin(srv), timeout=30)
        assert r.status_code == 400, (body, r.text)
        assert r.json()["errors"][0]["code"]
    r = requests.post(rules_url(srv), json={"pattern": "release-*"}, auth=admin(srv), timeout=30)
    assert r.status_code == 201
    r = requests.post(rules_url(srv), json={"pattern": "release-*"}, auth=admin(srv), timeout=30)
    assert r.status_code == 409
    r = requests.post(rules_url(srv, "nothing"), json={"pattern": "x"}, auth=admin(srv), timeout=30)
    assert r.status_code == 404
    assert (
        requests.delete(f"{rules_url(srv)}/424242", auth=admin(srv), timeout=30).status_code == 404
    )
    r = requests.post(
        rules_url(srv), json={"pattern": "x*"}, auth=("alice", srv.users["alice"]), timeout=30
    )
    assert r.status_code == 403


def test_a_protected_tag_created_by_a_concurrent_push_is_not_moved(srv):
    """Two pushes create one protected tag at once: the one that commits second must see the
    other's tag and be refused, not move it (on PostgreSQL its read came before the other's
    commit). The first push is played by a transaction held open by hand, since no client can
    pause a push between its insert and its commit."""
    c = OCIClient(srv.url, "admin", srv.users["admin"])
    repo = f"{REPO}-race"
    first, _ = c.push_image(repo, "first", [b"race one"])
    c.push_image(repo, "second", [b"race two"])
    second = c.request("GET", f"/v2/{repo}/manifests/second").content
    r = requests.post(rules_url(srv), json={"pattern": "race-*"}, auth=admin(srv), timeout=30)
    assert r.status_code == 201, r.text
    rule = f"{rules_url(srv)}/{r.json()['id']}"
    try:
        _race_a_transaction_held_open(srv, c, repo, first, second)
    finally:
        requests.delete(rule, auth=admin(srv), timeout=30)


def _race_a_transaction_held_open(srv, c: OCIClient, repo: str, first: str, second: bytes):
    [(repo_id, manifest_id)] = srv.sql(
        "SELECT m.repository_id, m.id FROM manifests m JOIN repositories r "
        "ON r.id = m.repository_id WHERE r.name = ? AND m.digest = ?",
        repo,
        first,
    )
    answers: list[requests.Response] = []

    def push() -> None:
        answers.append(
            c.request(
                "PUT",
                f"/v2/{repo}/manifests/race-1",
                data=second,
                headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
                timeout=60,
            )
        )

    engine = create_engine(srv.database_url())
    try:
        with engine.connect() as other:
            other.execute(
                text(
                    "INSERT INTO tags (repository_id, name, manifest_id, updated_at, pushed_by) "
                    "VALUES (:repo, 'race-1', :manifest, :now, 'other')"
                ),
                {"repo": repo_id, "manifest": manifest_id, "now": utcnow()},
            )
            pusher = threading.Thread(target=push, daemon=True)
            pusher.start()
            _until_the_push_waits(other, pusher)
            other.commit()
        pusher.join(90)
    finally:
        engine.dispose()
    assert not pusher.is_alive(), "the push never finished"
    assert answers and answers[0].status_code == 403, answers and answers[0].text
    assert answers[0].json()["errors"][0]["code"] == "DENIED"
    r = c.request("GET", f"/v2/{repo}/manifests/race-1", headers={"Accept": "*/*"})
    assert r.headers["Docker-Content-Digest"] == first


def _until_the_push_waits(conn, pusher: threading.Thread) -> None:
    """Until the push waits for the open transaction: on PostgreSQL a backend blocked by it (its
    tag read is then behind it); SQLite's writers queue on the database lock itself."""
    if conn.dialect.name != "postgresql":
        time.sleep(1)
        return
    mine = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
    blocked = text("SELECT count(*) FROM pg_stat_activity WHERE :mine = ANY(pg_blocking_pids(pid))")
    deadline = time.monotonic() + 30
    while pusher.is_alive() and time.monotonic() < deadline:
        with conn.engine.connect() as probe:
            if probe.execute(blocked, {"mine": mine}).scalar_one():
                return
        time.sleep(0.05)
    # Finished without waiting: the assertions on its answer say why.
    assert not pusher.is_alive(), "the push never waited for the open transaction"
