"""URLs no route matches, and methods a route does not allow, over HTTP: below /api/v1 the
management API's JSON errors (404, or 405 with Allow), below a Python index PyPI's own answers,
everywhere else what each protocol answered before; never a 500 nor a logged traceback."""

from __future__ import annotations

import pytest
import requests

from tests.support.server import no_traceback_logged

PYPI = "/api/v1/acme/main/python"


@pytest.fixture(autouse=True)
def quiet_log(server):
    """Fails the test when the server logged a traceback while it ran."""
    with no_traceback_logged(server):
        yield


def send(server, method: str, path: str, user: str | None = None, **kw) -> requests.Response:
    auth = (user, server.users[user]) if user else None
    return requests.request(
        method, server.url + path, auth=auth, timeout=60, allow_redirects=False, **kw
    )


def api_error(r: requests.Response, status: int, code: str) -> None:
    """The management API's one error shape, and nothing else."""
    assert r.status_code == status, (r.status_code, r.text[:300])
    assert r.headers["Content-Type"] == "application/json", (r.headers, r.text[:300])
    body = r.json()
    assert list(body) == ["errors"] and len(body["errors"]) == 1, body
    assert set(body["errors"][0]) == {"code", "message"}, body
    assert body["errors"][0]["code"] == code, body
    assert body["errors"][0]["message"], body


UNMATCHED = [
    ("GET", "/api/v1"),
    ("GET", "/api/v1/"),
    ("GET", "/api/v1/nonsense"),
    ("GET", "/api/v1/orgs/acme/nonsense"),
    ("POST", "/api/v1/orgs/acme/registries/main/nonsense/deeper"),
    # <int:...> rules: a value that is no integer matches no route.
    ("DELETE", "/api/v1/tokens/abc"),
    ("DELETE", "/api/v1/orgs/acme/invitations/1.5"),
    ("PATCH", "/api/v1/orgs/acme/registries/main/retention-policies/%2D1"),
    ("POST", "/api/v1/orgs/acme/registries/main/signing-keys/x/retire"),
    # Encoded separators and dot segments name no route either.
    ("GET", "/api/v1/orgs/acme/%2F..%2F..%2Fuser"),
    ("GET", "/api/v1/orgs/%2E%2E/%2E%2E/user"),
    ("GET", "/api/v1/orgs/acme/registries/main/quota%2F..%2F..%2Fquota"),
    ("GET", "/api/v1/no%00such/route"),
    ("DELETE", "/api/v1/orgs/acme/invitations/%00"),
    ("GET", "/api/v1/" + "a" * 3000),
    ("GET", "/api/v1/orgs/acme/" + "x/" * 1000),
    ("OPTIONS", "/api/v1/orgs/acme/nonsense"),
]


@pytest.mark.parametrize("user", [None, "admin"])
@pytest.mark.parametrize("method,path", UNMATCHED, ids=lambda v: str(v)[:40])
def test_unmatched_api_url_is_a_json_404(server, method, path, user):
    api_error(send(server, method, path, user), 404, "NOT_FOUND")


def test_unmatched_api_url_answers_head_without_a_body(server):
    r = send(server, "HEAD", "/api/v1/orgs/acme/nonsense", "admin")
    assert r.status_code == 404
    assert r.headers["Content-Type"] == "application/json"
    assert r.content == b""


WRONG_METHOD = [
    ("DELETE", "/api/v1/openapi.json"),
    ("POST", "/api/v1/vulnerabilities/database"),
    ("PUT", "/api/v1/orgs/acme/audit"),
    ("GET", "/api/v1/tokens/1"),
    ("PUT", "/api/v1/orgs/acme/registries/main/retention-policies/1"),
]


@pytest.mark.parametrize("user", [None, "admin"])
@pytest.mark.parametrize("method,path", WRONG_METHOD)
def test_wrong_method_is_a_json_405_naming_the_allowed(server, method, path, user):
    r = send(server, method, path, user, json={} if method in ("POST", "PUT") else None)
    api_error(r, 405, "METHOD_NOT_ALLOWED")
    allowed = {m.strip() for m in r.headers["Allow"].split(",")}
    assert method not in allowed and allowed - {"HEAD", "OPTIONS"}, allowed


def test_allow_names_the_routes_methods(server):
    r = send(server, "DELETE", "/api/v1/openapi.json")
    assert {m.strip() for m in r.headers["Allow"].split(",")} == {"GET", "HEAD", "OPTIONS"}
    r = send(server, "GET", "/api/v1/orgs/acme/registries/main/retention-policies/1", "admin")
    assert {m.strip() for m in r.headers["Allow"].split(",")} >= {"PATCH", "DELETE"}


def test_head_and_options_on_api_routes(server):
    r = send(server, "HEAD", "/api/v1/openapi.json")
    assert r.status_code == 200 and r.content == b""
    assert r.headers["Content-Type"] == "application/json"
    r = send(server, "HEAD", "/api/v1/orgs/acme")
    assert r.status_code == 401 and r.headers["Content-Type"] == "application/json"
    r = send(server, "HEAD", "/api/v1/orgs/acme", "admin")
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/json"
    for user in (None, "admin"):
        r = send(server, "OPTIONS", "/api/v1/orgs/acme", user)
        assert r.status_code == 200, r.status_code
        assert "GET" in r.headers["Allow"] and r.content == b""


# ---- below a Python index: PyPI's answers ------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [f"{PYPI}/nonsense", f"{PYPI}/simple/a/b/c", f"{PYPI}/files/x", f"{PYPI}/%2F..%2Fx"],
)
def test_unmatched_index_url_is_answered_the_pypi_way(server, path):
    r = send(server, "GET", path, "admin")
    assert r.status_code == 404, (r.status_code, r.text[:300])
    assert r.headers["Content-Type"] == "text/plain; charset=utf-8", r.headers
    assert r.reason == "Not Found" and r.text == "Not Found\n"
    # What a route of the index answers for a file it does not have, in the same format.
    known = send(server, "GET", f"{PYPI}/files/nothing/nothing-1.0.tar.gz", "admin")
    assert known.status_code == 404 and known.headers["Content-Type"] == r.headers["Content-Type"]


def test_wrong_method_on_the_index_is_answered_the_pypi_way(server):
    r = send(server, "GET", f"{PYPI}/", "admin")
    assert r.status_code == 405 and r.reason == "Method Not Allowed"
    assert r.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert "POST" in r.headers["Allow"]
    r = send(server, "PUT", f"{PYPI}/simple/", "admin")
    assert r.status_code == 405 and r.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert "GET" in r.headers["Allow"] and "PUT" not in r.headers["Allow"]


def test_index_management_and_integrity_keep_their_json(server):
    r = send(server, "GET", f"{PYPI}/projects/x/nonsense", "admin")
    assert r.status_code == 404 and r.headers["Content-Type"] == "application/json"
    assert r.json() == {"error": "Not Found"}
    r = send(server, "POST", f"{PYPI}/projects/x", "admin")
    assert r.status_code == 405 and r.json() == {"error": "Method Not Allowed"}
    assert "GET" in r.headers["Allow"]
    r = send(server, "GET", f"{PYPI}/integrity/x/1.0", "admin")
    assert r.status_code == 404 and r.headers["Content-Type"] == "application/json"
    assert r.json() == {"message": "Not Found"}


def test_api_url_that_only_resembles_an_index_is_the_apis(server):
    """/api/v1/<org>/<registry>/python has exactly two segments before "python"."""
    api_error(send(server, "GET", "/api/v1/orgs/acme/registries/main/python"), 404, "NOT_FOUND")
    api_error(send(server, "GET", "/api/v1/acme/python/x"), 404, "NOT_FOUND")


# ---- elsewhere, nothing changes ----------------------------------------------------------------


def test_unmatched_oci_url_keeps_the_distribution_error(server):
    r = send(server, "GET", "/v2/acme/main/x/nonsense/deeper", "admin")
    assert r.status_code == 404 and r.headers["Content-Type"] == "application/json"
    error = r.json()["errors"][0]
    assert error["code"] == "NAME_UNKNOWN" and "detail" in error
    assert r.headers["Docker-Distribution-API-Version"] == "registry/2.0"


def test_unmatched_console_url_keeps_the_html_page(server):
    for path in ("/no-such-page", "/orgs/acme/main/nonsense/deeper"):
        r = send(server, "GET", path)
        assert r.status_code == 404, (path, r.status_code)
        assert r.headers["Content-Type"] == "text/html; charset=utf-8"
        assert "Nothing here" in r.text  # the console's own page, not werkzeug's
    r = send(server, "POST", "/healthz")
    assert r.status_code == 405 and r.headers["Content-Type"] == "text/html; charset=utf-8"


@pytest.mark.parametrize("path", ["/api/v1x", "/api/v2/orgs", "/api", "/auth/nonsense"])
def test_other_protocol_paths_keep_their_answer(server, path):
    r = send(server, "GET", path)
    assert r.status_code == 404
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
