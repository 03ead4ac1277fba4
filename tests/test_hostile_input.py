"""Hostile input over HTTP: each request gets a 4xx in its protocol's error format, never a 500,
and the server logs no traceback while answering them."""

from __future__ import annotations

import json
import uuid

import pytest
import requests

from tests.pypi import dists
from tests.support.server import no_traceback_logged

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DEEP = 100_000
HUGE = "1" + "0" * 5000


@pytest.fixture
def quiet_log(server):
    """Fails the test when the server logged a traceback while it ran."""
    with no_traceback_logged(server):
        yield


def oci_error(r: requests.Response, status: int, code: str) -> None:
    assert r.status_code == status, (r.status_code, r.text[:500])
    assert r.headers["Content-Type"].startswith("application/json"), r.text[:500]
    assert r.json()["errors"][0]["code"] == code, r.text[:500]


def api_error(r: requests.Response, status: int) -> None:
    assert r.status_code == status, (r.status_code, r.text[:500])
    assert r.headers["Content-Type"].startswith("application/json"), r.text[:500]
    assert r.json()["errors"][0]["message"], r.text[:500]


def repo() -> str:
    return f"acme/main/h{uuid.uuid4().hex[:10]}"


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def manifest(admin, name: str) -> dict:
    _, doc = admin.push_image(name, "base", [b"layer"])
    return doc


# ---- manifests --------------------------------------------------------------------------------


def test_deeply_nested_manifest(admin, quiet_log):
    name = repo()
    manifest(admin, name)
    r = admin.request(
        "PUT",
        f"/v2/{name}/manifests/deep",
        data='{"schemaVersion": 2, "layers": ' + nested(DEEP) + "}",
        headers={"Content-Type": OCI_MANIFEST},
    )
    oci_error(r, 400, "MANIFEST_INVALID")


def test_deeply_nested_annotations(admin, quiet_log):
    name = repo()
    doc = json.dumps({**manifest(admin, name), "annotations": {"a": "PLACEHOLDER"}})
    deep = '{"x": ' * DEEP + "1" + "}" * DEEP
    body = doc.replace('"PLACEHOLDER"', deep)
    r = admin.request(
        "PUT", f"/v2/{name}/manifests/deep", data=body, headers={"Content-Type": OCI_MANIFEST}
    )
    oci_error(r, 400, "MANIFEST_INVALID")


@pytest.mark.parametrize("field", ["size", "schemaVersion"])
def test_numbers_with_thousands_of_digits(admin, quiet_log, field):
    name = repo()
    doc = manifest(admin, name)
    if field == "size":
        doc["config"]["size"] = 7
        body = json.dumps(doc).replace('"size": 7', f'"size": {HUGE}', 1)
    else:
        body = json.dumps(doc).replace('"schemaVersion": 2', f'"schemaVersion": {HUGE}', 1)
    assert HUGE in body
    r = admin.request(
        "PUT", f"/v2/{name}/manifests/big", data=body, headers={"Content-Type": OCI_MANIFEST}
    )
    oci_error(r, 400, "MANIFEST_INVALID")


def test_size_past_a_64_bit_column(admin, quiet_log):
    name = repo()
    doc = manifest(admin, name)
    doc["layers"][0]["size"] = 2**63
    oci_error(admin.push_manifest(name, "big", doc), 400, "MANIFEST_INVALID")


# ---- uploads ----------------------------------------------------------------------------------


def test_content_range_with_thousands_of_digits(admin, quiet_log):
    name = repo()
    r = admin.request("POST", f"/v2/{name}/blobs/uploads/")
    assert r.status_code == 202, r.text
    location = r.headers["Location"]
    r = admin.request(
        "PATCH",
        location,
        data=b"0123456789",
        headers={"Content-Range": f"10-{HUGE}", "Content-Type": "application/octet-stream"},
    )
    oci_error(r, 400, "BLOB_UPLOAD_INVALID")
    # The session is intact: the first chunk still goes in at offset 0.
    r = admin.request("PATCH", location, data=b"abc", headers={"Content-Range": "0-2"})
    assert r.status_code == 202, r.text


# ---- pagination -------------------------------------------------------------------------------


@pytest.mark.parametrize("n", ["²", "٣", "99999999999999999999", "9" * 3000, "-1", "1e3", " 5"])
@pytest.mark.parametrize("where", ["catalog", "tags"])
def test_bad_page_sizes(admin, quiet_log, n, where):
    if where == "catalog":
        path = "/v2/_catalog"
    else:
        name = repo()
        manifest(admin, name)
        path = f"/v2/{name}/tags/list"
    r = admin.request("GET", path, params={"n": n})
    oci_error(r, 400, "PAGINATION_NUMBER_INVALID")


def test_page_size_within_bounds_still_pages(admin, quiet_log):
    name = repo()
    manifest(admin, name)
    r = admin.request("GET", f"/v2/{name}/tags/list", params={"n": "10000"})
    assert r.status_code == 200 and r.json()["tags"] == ["base"]


# ---- the management API -----------------------------------------------------------------------


def _api(server, user: str | None = "admin") -> requests.Session:
    s = requests.Session()
    if user:
        s.auth = (user, server.users[user])
    return s


@pytest.mark.parametrize(
    ("path", "user"),
    [("/api/v1/oidc/token", None), ("/api/v1/orgs", "admin"), ("/api/v1/tokens", "alice")],
)
@pytest.mark.parametrize("kind", ["nested-array", "nested-object", "huge-number"])
def test_api_json_bodies(server, quiet_log, path, user, kind):
    body = {
        "nested-array": nested(DEEP),
        "nested-object": '{"name": ' + '{"a": ' * DEEP + "1" + "}" * (DEEP + 1),
        "huge-number": '{"name": ' + HUGE + "}",
    }[kind]
    r = _api(server, user).post(
        server.url + path, data=body, headers={"Content-Type": "application/json"}
    )
    api_error(r, 400)


def test_oversized_anonymous_body_is_refused_unread(server, quiet_log):
    big = b"x" * (48 * 1024 * 1024)
    r = requests.post(
        f"{server.url}/api/v1/oidc/token", data=big, headers={"Content-Type": "application/json"}
    )
    api_error(r, 413)


def test_oversized_body_without_a_length_is_refused(server, quiet_log):
    def chunks():
        for _ in range(48):
            yield b" " * (1024 * 1024)

    r = requests.post(
        f"{server.url}/api/v1/oidc/token",
        data=chunks(),
        headers={"Content-Type": "application/json"},
    )
    api_error(r, 413)


# ---- PyPI -------------------------------------------------------------------------------------


def test_yank_reason_nested_and_huge(server, quiet_log, tmp_path):
    name = dists.unique("hostile")
    base = f"{server.url}/api/v1/acme/main/python"
    auth = ("alice", server.users["alice"])
    wheel = dists.make_wheel(tmp_path, name, "1.0")
    assert dists.upload(base + "/", wheel, name, "1.0", auth).ok
    url = f"{base}/projects/{name}/releases/1.0/yank"
    for body in (
        '{"reason": ' + nested(DEEP) + "}",
        '{"reason": ' + HUGE + "}",
    ):
        r = requests.post(url, data=body, auth=auth, headers={"Content-Type": "application/json"})
        assert r.status_code == 400, (r.status_code, r.text[:300])
        # The project management endpoints answer JSON errors.
        assert "JSON" in r.json()["error"], r.text[:300]
    r = requests.post(url, json={"reason": "still works"}, auth=auth)
    assert r.status_code == 200, r.text


# ---- documents fetched from CI issuers ---------------------------------------------------------


LOOPBACK_ISSUERS = ("http://127.0.0.1:*",)


@pytest.mark.parametrize("document", [nested(DEEP), nested(5_000), '{"keys": ' + HUGE + "}", "[]"])
def test_issuer_documents_are_parsed_bounded(document):
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from app.access.issuer_fetch import FetchRefused, IssuerRules, fetch_json

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            data = document.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_args) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        with pytest.raises(FetchRefused):
            fetch_json(f"http://127.0.0.1:{httpd.server_port}/jwks", IssuerRules(LOOPBACK_ISSUERS))
    finally:
        httpd.shutdown()
