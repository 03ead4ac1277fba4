"""The console's audit log page, the pull audit switch, and who pushed each tag and manifest."""

from __future__ import annotations

import requests

from tests.console.conftest import XSS
from tests.pypi.dists import unique
from tests.support.client import OCIClient


def test_admins_see_the_audit_log_with_filters_and_pages(console_for, server):
    repo = f"acme/main/{unique('console-audit')}"
    alice = OCIClient(server.url, "alice", server.users["alice"])
    for i in range(3):
        alice.push_image(repo, f"t{i}", [f"console audit {i}".encode()])
    c = console_for("admin")
    assert 'id="audit-link"' in c.get("/orgs/acme").text
    r = c.get(f"/orgs/acme/audit?repository={repo}&action=manifest.push")
    assert r.status_code == 200
    assert r.text.count("<code>manifest.push</code>") == 3
    assert "alice" in r.text and "127.0.0.1" in r.text
    assert 'href="/api/v1/orgs/acme/audit?' in r.text and "format=jsonl" in r.text
    # Keyset pages: 50 a page, then "Older".
    for i in range(26):
        alice.push_image(repo, f"p{i}", [f"paged {i}".encode()])
    first = c.get(f"/orgs/acme/audit?repository={repo}")
    assert first.text.count("<tr class=") == 50 and 'rel="next"' in first.text
    older = first.text.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0]
    second = c.get(older.replace("&amp;", "&"))
    assert second.status_code == 200 and second.text.count("<tr class=") == 58 - 50
    assert "Newest" in second.text and 'rel="next"' not in second.text


def test_bad_filters_are_a_page_with_the_reason(console_for):
    r = console_for("admin").get("/orgs/acme/audit?since=yesterday")
    assert r.status_code == 400
    assert "since must be an ISO 8601 time" in r.text


def test_everything_on_the_page_is_escaped(console_for, server):
    # An invitee is any text up to 255 characters: it lands in the event's details.
    r = requests.post(
        f"{server.url}/api/v1/orgs/acme/invitations",
        json={"invitee": XSS, "role": "viewer"},
        auth=("admin", server.admin_password),
        timeout=30,
    )
    assert r.status_code == 201
    c = console_for("admin")
    page = c.get("/orgs/acme/audit?action=invitation.create&actor=" + XSS[:60])
    assert page.status_code == 200 and "No events match" in page.text
    page = c.get("/orgs/acme/audit?action=invitation.create")
    assert "invitation.create" in page.text
    assert "<script>" not in page.text and "<img src=x" not in page.text
    # The details are shown as JSON, whose < and > are escaped too.
    assert r"\u003cscript\u003e" in page.text or "&lt;script&gt;" in page.text


def test_others_may_not_read_it(console_for):
    assert console_for("alice").get("/orgs/acme/audit").status_code == 403
    assert console_for("victor").get("/orgs/acme/audit").status_code == 403
    assert console_for("mallory").get("/orgs/acme/audit").status_code == 404
    assert 'id="audit-link"' not in console_for("victor").get("/orgs/acme").text


def test_the_pull_audit_switch(console_for, server):
    c = console_for("admin")
    c.get("/orgs/acme")
    r = c.post("/orgs/acme/second/audit-pulls", {"audit_pulls": "true"})
    assert r.status_code == 302
    page = c.follow(r)
    assert "Pulls and downloads of acme/second are now audited." in page.text
    assert "Stop auditing pulls" in page.text
    assert c.post("/orgs/acme/second/audit-pulls", {"audit_pulls": "maybe"}).status_code == 302
    r = c.post("/orgs/acme/second/audit-pulls", {"audit_pulls": "false"})
    assert "no longer audited" in c.follow(r).text
    # Refused to those who are not admins, and without the CSRF token.
    alice = console_for("alice")
    alice.get("/orgs/acme")
    assert alice.post("/orgs/acme/second/audit-pulls", {"audit_pulls": "true"}).status_code == 403
    assert (
        c.post("/orgs/acme/second/audit-pulls", {"audit_pulls": "true"}, csrf=False).status_code
        == 400
    )
    log = c.get("/orgs/acme/audit?action=registry.audit_settings&registry=second").text
    assert log.count("<code>registry.audit_settings</code>") == 2


def test_repository_page_names_who_pushed(console_for, server):
    path = unique("pushedby")
    alice = OCIClient(server.url, "alice", server.users["alice"])
    alice.push_image(f"acme/main/{path}", "v1", [b"by alice"])
    admin = OCIClient(server.url, "admin", server.admin_password)
    admin.push_image(f"acme/main/{path}", "v1", [b"moved by admin"])
    r = console_for("victor").get(f"/orgs/acme/main/r/{path}")
    assert r.status_code == 200
    cells = r.text.split('class="pusher">')[1:]
    by = [cell.split("<", 1)[0] for cell in cells]
    # The tag was last moved by admin; alice's manifest, now untagged, stays hers.
    assert by == ["admin", "alice"]
