"""Hostile input to the lifecycle routes (audit log, quotas, retention, signing keys and policy,
vulnerability policy and allow-list) over HTTP, on SQLite + filesystem or
(CARGOHOLD_TEST_BACKEND=postgres) PostgreSQL + S3: every refusal is a 4xx in /api/v1 JSON or an
HTML page, never a 500 nor a logged traceback; a refused request changes nothing; one
organisation's admin cannot reach another's objects by id."""

from __future__ import annotations

import base64
import json
import uuid

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.console.conftest import Console
from tests.pypi import dists
from tests.support.server import no_traceback_logged, running_server

API = "/api/v1"
POLICIES = "/orgs/acme/registries/main/retention-policies"
KEYS = "/orgs/acme/registries/main/signing-keys"
ALLOW = "/orgs/acme/registries/main/vulnerability-allowlist"


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    with running_server(tmp_path_factory.mktemp("hostile-lifecycle")) as server:
        yield server


@pytest.fixture(autouse=True)
def quiet_log(srv):
    """Fails the test when the server logged a traceback while it ran."""
    with no_traceback_logged(srv):
        yield


def call(srv, user: str | None, method: str, path: str, **kw) -> requests.Response:
    auth = (user, srv.users[user]) if user else None
    return requests.request(method, srv.url + API + path, auth=auth, timeout=60, **kw)


def raw(srv, user: str, method: str, path: str, body: str | bytes) -> requests.Response:
    headers = {"Content-Type": "application/json"}
    return call(srv, user, method, path, data=body, headers=headers)


def api_error(r: requests.Response, *statuses: int) -> None:
    assert r.status_code in statuses, (r.status_code, r.text[:500])
    assert r.headers["Content-Type"].startswith("application/json"), r.text[:500]
    assert r.json()["errors"][0]["message"], r.text[:500]


def refused(r: requests.Response) -> None:
    """A 4xx in /api/v1 JSON, a URL no route matches included; only a request line too long for
    the server to read (414) gets the server's own plain answer."""
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:500])
    if r.status_code != 414:
        api_error(r, r.status_code)


def public_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def private_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


# ---- the audit log: filters, limits, cursors -------------------------------------------------

BAD_LIMITS = ["abc", "-1", "0", "501", "1.5", "²", "١٢", "1" * 3000, " 5", "0x10"]
BAD_TIMES = [
    "yesterday",
    "2026-13-40",
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00",
    "2026-01-01T00:00:00+99:00",
    "\x00",
    "9" * 3000,
]


@pytest.mark.parametrize("limit", BAD_LIMITS)
def test_audit_limit_garbage(srv, limit):
    api_error(call(srv, "admin", "GET", "/orgs/acme/audit", params={"limit": limit}), 400)
    api_error(call(srv, "admin", "GET", "/admin/audit", params={"limit": limit}), 400)


@pytest.mark.parametrize("before", ["x", "-5", "²", "1" * 20, "1" * 3000, "1e9"])
def test_audit_cursor_garbage(srv, before):
    api_error(call(srv, "admin", "GET", "/orgs/acme/audit", params={"before": before}), 400)


@pytest.mark.parametrize("when", BAD_TIMES)
@pytest.mark.parametrize("name", ["since", "until"])
def test_audit_times_garbage(srv, name, when):
    api_error(call(srv, "admin", "GET", "/orgs/acme/audit", params={name: when}), 400)
    r = call(srv, "admin", "GET", "/admin/audit", params={name: when, "format": "jsonl"})
    api_error(r, 400)


def test_audit_console_refuses_garbage_with_a_page(srv):
    console = Console(srv.url)
    console.sign_in("admin", srv.users["admin"])
    for args in ({"since": "0001-01-01T00:00:00+01:00"}, {"before": "²"}, {"actor": "\x00"}):
        r = console.get("/orgs/acme/audit", params=args)
        assert r.status_code in (200, 400), (args, r.status_code, r.text[:300])
        assert r.headers["Content-Type"].startswith("text/html")


@pytest.mark.parametrize(
    "args",
    [
        {"actor": "\x00"},
        {"action": "login\x00"},
        {"registry": "m\x00in"},
        {"repository": "acme/main/\x00"},
        {"result": "ok\x00"},
        {"org": "ac\x00me"},
        {"actor": "é" * 64},
        {"actor": "x" * 3000},
        {"action": "%_*"},
        {"format": "xml"},
    ],
)
def test_audit_filters_with_control_characters_or_oversized(srv, args):
    r = call(srv, "admin", "GET", "/admin/audit", params=args)
    if r.status_code == 200:
        assert r.json()["events"] == []
    else:
        api_error(r, 400)


def test_audit_of_another_organisation_is_not_reachable(srv):
    # mallory administers "other", not acme.
    api_error(call(srv, "mallory", "GET", "/orgs/acme/audit"), 403, 404)
    api_error(call(srv, "mallory", "GET", "/admin/audit", params={"org": "acme"}), 403, 404)
    r = call(srv, "mallory", "GET", "/orgs/other/audit", params={"org": "acme", "limit": 500})
    assert r.status_code == 200
    assert {e["org"] for e in r.json()["events"]} <= {"other"}
    # A cursor from acme's pages shows nothing of acme's through other's log.
    top = call(srv, "admin", "GET", "/orgs/acme/audit", params={"limit": 1}).json()
    if top["events"]:
        before = str(top["events"][0]["id"] + 1)
        r = call(srv, "mallory", "GET", "/orgs/other/audit", params={"before": before})
        assert r.status_code == 200 and {e["org"] for e in r.json()["events"]} <= {"other"}
    r = call(srv, "mallory", "GET", "/orgs/other/audit", params={"format": "jsonl"})
    assert r.status_code == 200
    assert {json.loads(line)["org"] for line in r.text.splitlines()} <= {"other"}
    api_error(call(srv, "mallory", "GET", "/orgs/acme/registries/main/audit-settings"), 403, 404)
    r = call(srv, "mallory", "PUT", "/orgs/acme/registries/main/audit-settings", json={})
    api_error(r, 403, 404)


@pytest.mark.parametrize("body", ['{"audit_pulls": "yes"}', '{"audit_pulls": 1}', "[true]", "{"])
def test_audit_settings_wrong_types(srv, body):
    path = "/orgs/acme/registries/main/audit-settings"
    before = call(srv, "admin", "GET", path).json()
    api_error(raw(srv, "admin", "PUT", path, body), 400)
    assert call(srv, "admin", "GET", path).json() == before


# ---- quotas ----------------------------------------------------------------------------------

BAD_LIMIT_BODIES = [
    '{"limit_bytes": "5"}',
    '{"limit_bytes": -1}',
    '{"limit_bytes": 1.5}',
    '{"limit_bytes": 1e400}',
    '{"limit_bytes": NaN}',
    '{"limit_bytes": Infinity}',
    '{"limit_bytes": ' + "9" * 30 + "}",
    '{"limit_bytes": ' + "9" * 5000 + "}",
    '{"limit_bytes": true}',
    '{"limit_bytes": {"$gt": 0}}',
    '{"limit_bytes": [1]}',
    '{"limit": 5}',
    "{}",
    "[]",
    "null",
    '"x"',
    "{",
    b'{"limit_bytes": 5, "\xff": 1}',
]


@pytest.mark.parametrize("body", BAD_LIMIT_BODIES)
def test_quota_bodies(srv, body):
    for path in ("/orgs/acme/quota", "/orgs/acme/registries/main/quota"):
        before = call(srv, "admin", "GET", path).json()
        api_error(raw(srv, "admin", "PUT", path, body), 400)
        assert call(srv, "admin", "GET", path).json() == before


def test_quota_limits_are_for_site_admins_only(srv):
    for path in ("/orgs/other/quota", "/orgs/acme/quota", "/orgs/other/registries/private/quota"):
        api_error(call(srv, "mallory", "PUT", path, json={"limit_bytes": None}), 403, 404)
    api_error(call(srv, "mallory", "GET", "/orgs/acme/quota"), 403, 404)
    api_error(call(srv, "mallory", "GET", "/admin/quotas"), 403)


def test_quota_oversized_body(srv):
    body = '{"limit_bytes": 1, "pad": "' + "x" * (10 * 1024 * 1024) + '"}'
    api_error(raw(srv, "admin", "PUT", "/orgs/acme/quota", body), 413)


# ---- retention policies ----------------------------------------------------------------------

BAD_POLICIES = [
    {"keep_count": "5"},
    {"keep_count": -1},
    {"keep_count": 0},
    {"keep_count": 2**70},
    {"keep_count": 1.5},
    {"keep_count": True},
    {"keep_count": {"n": 1}},
    {"untagged_days": 10**9},
    {"keep_count": 1, "tag_pattern": 5},
    {"keep_count": 1, "tag_pattern": "x" * 10_000},
    {"keep_count": 1, "tag_pattern": "v\x00*"},
    {"keep_count": 1, "tag_pattern": "ü*"},
    {"keep_count": 1, "protect_pattern": ["v*"]},
    {"keep_count": 1, "repository_pattern": "a%2Fb"},
    {"keep_count": 1, "repository_pattern": "\u202e*"},
    {"keep_count": 1, "repository_pattern": ""},
    {"keep_count": 1, "enabled": "false"},
    {"keep_count": 1, "registry_id": 2},
    {"keep_count": 1, "id": 1},
    {},
    {"keep_count": None, "untagged_days": None},
]


def policies(srv) -> list[dict]:
    r = call(srv, "admin", "GET", POLICIES)
    assert r.status_code == 200
    return r.json()["policies"]


@pytest.mark.parametrize("body", BAD_POLICIES)
def test_retention_create_refuses(srv, body):
    before = policies(srv)
    api_error(call(srv, "admin", "POST", POLICIES, json=body), 400)
    assert policies(srv) == before


@pytest.mark.parametrize(
    "body", ['{"keep_count": NaN}', '{"keep_count": Infinity}', "[]", "null", "{", '{"a":' * 500]
)
def test_retention_create_refuses_raw(srv, body):
    before = policies(srv)
    api_error(raw(srv, "admin", "POST", POLICIES, body), 400)
    assert policies(srv) == before


@pytest.fixture(scope="module")
def acme_policy(srv) -> dict:
    r = call(srv, "admin", "POST", POLICIES, json={"keep_count": 3, "tag_pattern": "dev-*"})
    assert r.status_code == 201, r.text
    return r.json()


@pytest.mark.parametrize("body", BAD_POLICIES[:-2] + [{"keep_count": None}])
def test_retention_patch_refuses_and_changes_nothing(srv, acme_policy, body):
    path = f"{POLICIES}/{acme_policy['id']}"
    api_error(call(srv, "admin", "PATCH", path, json=body), 400)
    assert [p for p in policies(srv) if p["id"] == acme_policy["id"]] == [acme_policy]


@pytest.mark.parametrize("policy_id", ["abc", "-1", "0", "99999999999999999999999", "1%2F..", ".."])
def test_retention_policy_ids_garbage(srv, policy_id):
    refused(call(srv, "admin", "PATCH", f"{POLICIES}/{policy_id}", json={"keep_count": 1}))
    refused(call(srv, "admin", "DELETE", f"{POLICIES}/{policy_id}"))
    refused(call(srv, "admin", "POST", f"{KEYS}/{policy_id}/retire"))
    refused(call(srv, "admin", "DELETE", f"{KEYS}/{policy_id}"))


@pytest.mark.parametrize("limit", ["0", "-1", "abc", "²", "10001", "1" * 3000])
def test_retention_report_limit(srv, limit):
    path = "/orgs/acme/registries/main/retention-report"
    api_error(call(srv, "admin", "GET", path, params={"limit": limit}), 400)


def test_retention_policy_of_another_organisation_by_id(srv, acme_policy):
    pid = acme_policy["id"]
    theirs = f"/orgs/other/registries/private/retention-policies/{pid}"
    api_error(call(srv, "mallory", "PATCH", theirs, json={"keep_count": 1}), 404)
    api_error(call(srv, "mallory", "DELETE", theirs), 404)
    api_error(call(srv, "mallory", "PATCH", f"{POLICIES}/{pid}", json={"keep_count": 1}), 403, 404)
    api_error(call(srv, "mallory", "DELETE", f"{POLICIES}/{pid}"), 403, 404)
    api_error(call(srv, "mallory", "GET", POLICIES), 403, 404)
    # A writer of acme is no admin of it either.
    api_error(call(srv, "alice", "DELETE", f"{POLICIES}/{pid}"), 403)
    # Another registry of the same organisation does not reach it either.
    other_reg = f"/orgs/acme/registries/second/retention-policies/{pid}"
    api_error(call(srv, "admin", "PATCH", other_reg, json={"keep_count": 1}), 404)
    assert [p for p in policies(srv) if p["id"] == pid] == [acme_policy]


# ---- signing keys and the signature policy ---------------------------------------------------


def keys_of(srv, path: str = KEYS) -> list[dict]:
    r = call(srv, "admin", "GET", path)
    assert r.status_code == 200
    return r.json()["keys"]


@pytest.mark.parametrize(
    "body",
    [
        {"name": "priv", "pem": private_pem()},
        {
            "name": "garbage",
            "pem": "-----BEGIN PUBLIC KEY-----\nnot base64!\n-----END PUBLIC KEY-----",
        },
        {"name": "two", "pem": public_pem() + public_pem()},
        {"name": "none", "pem": "hello"},
        {"name": "big", "pem": public_pem() + "A" * 20_000},
        {"name": "nul", "pem": public_pem().replace("\n", "\x00", 1)},
        {"name": "wrong", "pem": 5},
        {"name": "wrong", "pem": [public_pem()]},
        {"name": "../../x", "pem": public_pem()},
        {"name": "k\x00", "pem": public_pem()},
        {"name": "é", "pem": public_pem()},
        {"name": "x" * 10_000, "pem": public_pem()},
        {"name": None, "pem": public_pem()},
        {"pem": public_pem()},
        {
            "name": "other",
            "pem": "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----",
        },
        {
            "name": "ucert",
            "pem": "-----BEGIN CERTIFICATE-----\n\u00e9\u00e9\n-----END CERTIFICATE-----",
        },
    ],
)
def test_signing_key_refused(srv, body):
    before = keys_of(srv)
    api_error(call(srv, "admin", "POST", KEYS, json=body), 400)
    assert keys_of(srv) == before


def test_signing_key_pem_of_ten_megabytes(srv):
    body = json.dumps({"name": "huge", "pem": "A" * (10 * 1024 * 1024)})
    api_error(raw(srv, "admin", "POST", KEYS, body), 413)


@pytest.mark.parametrize(
    "body",
    [
        {"require_signature": "true"},
        {"require_signature": 1},
        {"require_signature": None},
        {},
        {"require_signature": False, "exempt_writers": "no"},
    ],
)
def test_signature_policy_wrong_types(srv, body):
    path = "/orgs/acme/registries/main/signature-policy"
    before = call(srv, "admin", "GET", path).json()
    api_error(call(srv, "admin", "PUT", path, json=body), 400)
    assert call(srv, "admin", "GET", path).json() == before


def test_signing_key_of_another_organisation_by_id(srv):
    r = call(srv, "admin", "POST", KEYS, json={"name": "acme-key", "pem": public_pem()})
    assert r.status_code == 201, r.text
    key = r.json()
    theirs = f"/orgs/other/registries/private/signing-keys/{key['id']}"
    api_error(call(srv, "mallory", "POST", theirs + "/retire"), 404)
    api_error(call(srv, "mallory", "DELETE", theirs), 404)
    api_error(call(srv, "mallory", "POST", f"{KEYS}/{key['id']}/retire"), 403, 404)
    api_error(call(srv, "mallory", "DELETE", f"{KEYS}/{key['id']}"), 403, 404)
    api_error(call(srv, "mallory", "GET", KEYS), 403, 404)
    # acme's viewer reads the keys but cannot touch them.
    api_error(call(srv, "victor", "DELETE", f"{KEYS}/{key['id']}"), 403)
    api_error(
        call(srv, "admin", "DELETE", f"/orgs/acme/registries/second/signing-keys/{key['id']}"), 404
    )
    assert [k for k in keys_of(srv) if k["id"] == key["id"]] == [key]
    r = call(srv, "mallory", "GET", "/orgs/other/registries/private/signing-keys")
    assert r.status_code == 200 and r.json()["keys"] == []


# ---- path parameters of the per-manifest routes -----------------------------------------------


@pytest.mark.parametrize(
    "tail",
    [
        "repositories/../../other/private/x/manifests/latest/signatures",
        "repositories/..%2F..%2Fother%2Fprivate%2Fx/manifests/latest/signatures",
        "repositories/x/manifests/..%2F..%2Flatest/signatures",
        "repositories/x/manifests/sha256:zz/signatures",
        "repositories/x/manifests/" + "a" * 5000 + "/signatures",
        "repositories/%00/manifests/latest/signatures",
        "repositories/x/manifests/sha256:zz/vulnerabilities",
        "repositories/x/manifests/latest/vulnerabilities",
        "repositories/x/manifests/sha256:" + "0" * 64 + "/vulnerabilities",
        "repositories/X%20Y/manifests/sha256:" + "0" * 64 + "/vulnerabilities",
        "repositories/..%2F..%2Fother%2Fprivate%2Fx/manifests/sha256:"
        + "0" * 64
        + "/vulnerabilities",
        "python/projects/..%2F..%2Fx/vulnerabilities",
        "python/projects/%00/vulnerabilities",
        "python/projects/" + "a" * 5000 + "/vulnerabilities",
    ],
)
def test_manifest_routes_path_garbage(srv, tail):
    refused(call(srv, "admin", "GET", f"/orgs/acme/registries/main/{tail}"))


def test_other_organisations_manifests_are_not_reachable(srv):
    digest = "sha256:" + "0" * 64
    for tail in (
        "repositories/x/manifests/latest/signatures",
        f"repositories/x/manifests/{digest}/vulnerabilities",
        "python/projects/x/vulnerabilities",
    ):
        r = call(srv, "mallory", "GET", f"/orgs/acme/registries/main/{tail}")
        api_error(r, 401, 403, 404)


@pytest.mark.parametrize("org", ["ac%00me", "..", "%2E%2E", "a" * 5000, "ACME"])
def test_org_path_garbage(srv, org):
    for path in (
        f"/orgs/{org}/audit",
        f"/orgs/{org}/quota",
        f"/orgs/{org}/registries/main/retention-policies",
    ):
        refused(call(srv, "admin", "GET", path))


# ---- the vulnerability policy and allow-list -------------------------------------------------


def allowlist(srv) -> list[dict]:
    r = call(srv, "admin", "GET", ALLOW)
    assert r.status_code == 200
    return r.json()


@pytest.mark.parametrize(
    "body",
    [
        {"advisory": "GHSA-aaaa-bbbb-cccc", "expires_at": "9999-12-31T23:59:59-01:00"},
        {"advisory": "GHSA-aaaa-bbbb-cccc", "expires_at": "0001-01-01T00:00:00+01:00"},
        {"advisory": "GHSA-aaaa-bbbb-cccc", "expires_at": "tomorrow"},
        {"advisory": "GHSA-aaaa-bbbb-cccc", "expires_at": "2020-01-01"},
        {"advisory": "GHSA-aaaa-bbbb-cccc", "expires_at": "9" * 5000},
        {"advisory": "GHSA-aaaa-bbbb-cccc", "expires_at": 2**70},
        {"advisory": "GHSA-aaaa-bbbb-cccc", "expires_at": None},
        {"advisory": "GHSA-aaaa-bbbb-cccc", "expires_at": "2099-01-01", "reason": "x" * 5000},
        {"advisory": "GHSA-aaaa-bbbb-cccc", "expires_at": "2099-01-01", "reason": 5},
        {"advisory": "GHSA-\x00", "expires_at": "2099-01-01"},
        {"advisory": "../../x", "expires_at": "2099-01-01"},
        {"advisory": "G" * 10_000, "expires_at": "2099-01-01"},
        {"advisory": ["CVE-2020-1"], "expires_at": "2099-01-01"},
    ],
)
def test_allowlist_refuses(srv, body):
    before = allowlist(srv)
    api_error(call(srv, "admin", "POST", ALLOW, json=body), 400)
    assert allowlist(srv) == before


@pytest.mark.parametrize("advisory", ["GHSA-%00", "%2E%2E", "a" * 5000, "CVE-2020-1%2F.."])
def test_allowlist_delete_garbage(srv, advisory):
    refused(call(srv, "admin", "DELETE", f"{ALLOW}/{advisory}"))


@pytest.mark.parametrize(
    "body",
    [
        '{"block_at": NaN}',
        '{"block_at": Infinity}',
        '{"block_at": -1}',
        '{"block_at": 1e400}',
        '{"block_at": "extreme"}',
        '{"block_at": 5, "unknown": "maybe"}',
        '{"block_at": 5, "unknown": 1}',
        '{"block_at": [5]}',
        "{}",
    ],
)
def test_vulnerability_policy_refuses(srv, body):
    path = "/orgs/acme/registries/main/vulnerability-policy"
    before = call(srv, "admin", "GET", path).json()
    api_error(raw(srv, "admin", "PUT", path, body), 400)
    assert call(srv, "admin", "GET", path).json() == before


def test_allowlist_entry_of_another_organisation(srv):
    body = {"advisory": "GHSA-hhhh-iiii-jjjj", "expires_at": "2099-01-01", "reason": "acme only"}
    assert call(srv, "admin", "POST", ALLOW, json=body).status_code in (200, 201)
    theirs = "/orgs/other/registries/private/vulnerability-allowlist/GHSA-hhhh-iiii-jjjj"
    api_error(call(srv, "mallory", "DELETE", theirs), 404)
    api_error(call(srv, "mallory", "DELETE", f"{ALLOW}/GHSA-hhhh-iiii-jjjj"), 403, 404)
    api_error(call(srv, "mallory", "GET", ALLOW), 403, 404)
    r = call(srv, "mallory", "GET", "/orgs/other/registries/private/vulnerability-allowlist")
    assert r.status_code == 200 and r.json() == []
    assert [a["advisory"] for a in allowlist(srv)].count("GHSA-hhhh-iiii-jjjj") == 1


# ---- PEP 740 attestations on upload ------------------------------------------------------------


def shaped_attestation(**changes) -> dict:
    """An attestation of the right shape (its contents verify nothing)."""
    good_b64 = base64.b64encode(b"x" * 64).decode()
    doc = {
        "version": 1,
        "verification_material": {
            "certificate": good_b64,
            "transparency_entries": [{"logIndex": "1"}],
        },
        "envelope": {"statement": good_b64, "signature": good_b64},
    }
    for path, value in changes.items():
        node = doc
        *parents, last = path.split(".")
        for p in parents:
            node = node[p]
        node[last] = value
    return doc


BAD_ATTESTATIONS = [
    [shaped_attestation(**{"envelope.signature": "!!!not base64!!!"})],
    [shaped_attestation(**{"envelope.statement": "A"})],
    [shaped_attestation(**{"envelope.statement": "\x00\r\n"})],
    [shaped_attestation(**{"verification_material.certificate": "é" * 100})],
    [shaped_attestation(**{"verification_material.certificate": 5})],
    [shaped_attestation(**{"verification_material.transparency_entries": []})],
    [shaped_attestation(**{"verification_material.transparency_entries": "x"})],
    [shaped_attestation(version=2**80)],
    [shaped_attestation(version="1\r\nX-Injected: yes")],
    [shaped_attestation(**{"envelope": None})],
    [shaped_attestation(**{"envelope.statement": base64.b64encode(b"{" * 100).decode()})],
    [shaped_attestation()],
    [{"\r\nX-Injected": "yes"}],
    "[" * 1000 + "]" * 1000,
    '[{"version": NaN}]',
    "\x00",
]


@pytest.mark.parametrize("field", BAD_ATTESTATIONS)
def test_attestations_malformed(srv, tmp_path, field):
    project = f"hostile-att-{uuid.uuid4().hex[:8]}"
    wheel = dists.make_wheel(tmp_path, project, "1.0")
    text = field if isinstance(field, str) else json.dumps(field)
    url = f"{srv.url}{API}/acme/main/python/"
    r = dists.upload(url, wheel, project, "1.0", ("admin", srv.users["admin"]), attestations=text)
    assert r.status_code == 400, (r.status_code, r.text[:500])
    assert "X-Injected" not in r.headers
    assert "\n" not in r.reason and r.reason, r.reason
    simple = requests.get(f"{url}simple/{project}/", auth=("admin", srv.users["admin"]), timeout=30)
    assert simple.status_code == 404, simple.text[:300]


# ---- Sign in with Cognito: a callback nobody started -------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        {},
        {"state": "x", "code": "y"},
        {"state": "\x00", "code": "\x00"},
        {"state": "a" * 3000},
        {"error": "access_denied", "error_description": "<script>alert(1)</script>"},
        {"state": ["a", "b"], "code": "c"},
    ],
)
def test_cognito_callback_garbage(srv, args):
    r = requests.get(f"{srv.url}/sign-in/cognito/callback", params=args, timeout=30)
    assert 300 <= r.status_code < 500, (r.status_code, r.text[:300])
    assert "<script>alert(1)</script>" not in r.text


# ---- NUL characters inside JSON strings (PostgreSQL text cannot hold them) ---------------------


def test_nul_inside_stored_strings(srv):
    before = keys_of(srv)
    r = call(srv, "admin", "POST", KEYS, json={"name": "nul-tail", "pem": public_pem() + "\x00"})
    if r.status_code == 201:
        assert "\x00" not in r.json()["pem"]
        assert call(srv, "admin", "DELETE", f"{KEYS}/{r.json()['id']}").status_code == 204
    else:
        api_error(r, 400)
        assert keys_of(srv) == before
    entries = allowlist(srv)
    body = {"advisory": "GHSA-nnnn-uuuu-llll", "expires_at": "2099-01-01", "reason": "a\x00b"}
    api_error(call(srv, "admin", "POST", ALLOW, json=body), 400)
    assert allowlist(srv) == entries


def test_failed_login_with_control_characters_in_the_name(srv):
    for name in ("a\x00b", "ä\x00", "x" * 10_000):
        r = requests.get(f"{srv.url}{API}/user", auth=(name, "pw"), timeout=30)
        # The HTTP server answers 431 itself to a header past its size limit.
        assert r.status_code in (400, 401, 431), (r.status_code, r.text[:300])


def test_console_signing_key_form_garbage(srv):
    console = Console(srv.url)
    console.sign_in("admin", srv.users["admin"])
    console.get("/orgs/acme/main")
    before = keys_of(srv)
    for form in (
        {"name": "nul-console", "pem": public_pem() + "\x00"},
        {"name": "priv-console", "pem": private_pem()},
        {"name": "é\x00", "pem": public_pem()},
    ):
        r = console.post("/orgs/acme/main/signing-keys", form)
        assert r.status_code in (302, 303, 400), (form["name"], r.status_code, r.text[:300])
        if r.status_code == 400:
            assert r.headers["Content-Type"].startswith("text/html")
    assert keys_of(srv) == before
    for key_id in ("99999999999999999999999", "0"):
        r = console.post(f"/orgs/acme/main/signing-keys/{key_id}/retire", {})
        assert r.status_code in (302, 303, 404), (key_id, r.status_code, r.text[:300])


@pytest.mark.parametrize(
    "extra",
    [
        {"org": "other"},
        {"_method": "POST"},
        {"_scheme": "javascript"},
        {"_external": "1"},
        {"_anchor": "x"},
        {"endpoint": "api.site_audit"},
        {"values": "x"},
    ],
)
def test_audit_next_link_with_odd_query_arguments(srv, extra):
    for path in ("/orgs/acme/audit", "/admin/audit"):
        r = call(srv, "admin", "GET", path, params={"limit": 1, **extra})
        if r.status_code != 200:
            api_error(r, 400)
            continue
        nxt = r.json().get("next")
        assert nxt, r.json()
        assert nxt.startswith(API + path + "?"), nxt
        assert {e["org"] for e in r.json()["events"]} <= (
            {"acme"} if "orgs" in path else {None, "acme", "other"}
        )
