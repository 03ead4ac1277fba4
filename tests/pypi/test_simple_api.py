"""The Simple API page by page and field by field: PEP 503, 592, 629, 658, 691, 700, 714."""

from __future__ import annotations

import hashlib
import re
import zipfile
from html.parser import HTMLParser
from urllib.parse import urldefrag, urljoin

import pytest
import requests
from packaging.metadata import parse_email

from tests.pypi import dists
from tests.pypi.conftest import PIP_ACCEPT, UV_ACCEPT, sha256sums

JSON = "application/vnd.pypi.simple.v1+json"
HTML = "application/vnd.pypi.simple.v1+html"
UPLOAD_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$")
WHEELS = {
    "requests": "requests-2.32.3-py3-none-any.whl",
    "six": "six-1.16.0-py2.py3-none-any.whl",
    "zope-event": "zope.event-5.0-py3-none-any.whl",
}


class Page(HTMLParser):
    def __init__(self, text: str):
        super().__init__()
        self.anchors: list[tuple[dict[str, str | None], str]] = []
        self.meta: dict[str, str] = {}
        self._attrs: dict | None = None
        self._text = ""
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self._attrs, self._text = dict(attrs), ""
        elif tag == "meta":
            d = dict(attrs)
            self.meta[d.get("name") or ""] = d.get("content") or ""

    def handle_data(self, data):
        if self._attrs is not None:
            self._text += data

    def handle_endtag(self, tag):
        if tag == "a" and self._attrs is not None:
            self.anchors.append((self._attrs, self._text))
            self._attrs = None


def get(index, path: str = "", accept: str | None = None, **kw) -> requests.Response:
    headers = {"Accept": accept} if accept is not None else {}
    headers.update(kw.pop("headers", {}))
    return requests.get(
        index.simple + path,
        auth=index.auth,
        headers=headers,
        allow_redirects=False,
        timeout=30,
        **kw,
    )


def wheel_metadata(path) -> bytes:
    with zipfile.ZipFile(path) as zf:
        (name,) = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")]
        return zf.read(name)


def test_root_index_html_and_json(twine_uploaded, dist_files):
    expected = {"requests", "six", "zope-event", "markupsafe", "charset-normalizer", "numpy"}
    page = get(twine_uploaded)
    assert page.status_code == 200
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    parsed = Page(page.text)
    assert parsed.meta["pypi:repository-version"] == "1.1"
    links = {text: attrs["href"] for attrs, text in parsed.anchors}
    assert expected <= set(links)
    assert links["zope-event"] == "zope-event/"
    doc = get(twine_uploaded, accept=JSON).json()
    assert doc["meta"] == {"api-version": "1.1"}
    names = [p["name"] for p in doc["projects"]]
    assert expected <= set(names)
    assert set(names) == set(links)


@pytest.mark.parametrize("project", sorted(WHEELS))
def test_project_page_html_field_by_field(twine_uploaded, testdata, project):
    page = get(twine_uploaded, f"{project}/")
    assert page.status_code == 200
    assert page.headers["Vary"] == "Accept"
    parsed = Page(page.text)
    assert parsed.meta["pypi:repository-version"] == "1.1"
    sums = sha256sums()
    anchors = {text: attrs for attrs, text in parsed.anchors}
    assert set(anchors) == {name for name in sums if dists_project(name) == project}
    for filename, attrs in anchors.items():
        url, fragment = urldefrag(urljoin(page.url, attrs["href"]))
        assert fragment == f"sha256={sums[filename]}"
        body = requests.get(url, auth=twine_uploaded.auth, timeout=60).content
        assert hashlib.sha256(body).hexdigest() == sums[filename]
        local = testdata / filename
        if filename.endswith(".whl"):
            meta = wheel_metadata(local)
            # PEP 714 attribute and the PEP 658 one, equal, naming the .metadata file's hash.
            assert attrs["data-core-metadata"] == f"sha256={hashlib.sha256(meta).hexdigest()}"
            assert attrs["data-dist-info-metadata"] == attrs["data-core-metadata"]
            served = requests.get(url + ".metadata", auth=twine_uploaded.auth, timeout=30)
            assert served.status_code == 200
            assert served.content == meta
            requires = parse_email(meta)[0].get("requires_python")
        else:
            assert "data-core-metadata" not in attrs
            assert "data-dist-info-metadata" not in attrs
            requires = attrs.get("data-requires-python")
        # The parser unescapes: what it reads is the specifier itself.
        assert attrs.get("data-requires-python") == requires
        assert "data-yanked" not in attrs


def dists_project(filename: str) -> str:
    from packaging.utils import parse_sdist_filename, parse_wheel_filename

    if filename.endswith(".whl"):
        return parse_wheel_filename(filename)[0]
    if filename.endswith(".tar.gz"):
        return parse_sdist_filename(filename)[0]
    return ""


def test_requires_python_is_escaped_in_html(twine_uploaded):
    text = get(twine_uploaded, "six/").text
    assert 'data-requires-python="&gt;=2.7, !=3.0.*, !=3.1.*, !=3.2.*"' in text
    assert ">=2.7" not in text


@pytest.mark.parametrize("project", sorted(WHEELS))
def test_project_page_json_field_by_field(twine_uploaded, testdata, project):
    resp = get(twine_uploaded, f"{project}/", accept=JSON)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == JSON
    assert resp.headers["Vary"] == "Accept"
    doc = resp.json()
    assert set(doc) == {"meta", "name", "versions", "files"}
    assert doc["meta"] == {"api-version": "1.1"}
    assert doc["name"] == project
    sums = sha256sums()
    expected = {name for name in sums if dists_project(name) == project}
    assert {f["filename"] for f in doc["files"]} == expected
    for f in doc["files"]:
        local = testdata / f["filename"]
        assert "dist-info-metadata" not in f and "data-dist-info-metadata" not in f
        assert f["hashes"] == {"sha256": sums[f["filename"]]}
        assert f["size"] == local.stat().st_size
        assert UPLOAD_TIME.match(f["upload-time"]), f["upload-time"]
        assert f["yanked"] is False
        url = urljoin(resp.url, f["url"])
        body = requests.get(url, auth=twine_uploaded.auth, timeout=60).content
        assert hashlib.sha256(body).hexdigest() == sums[f["filename"]]
        if f["filename"].endswith(".whl"):
            meta = wheel_metadata(local)
            assert f["core-metadata"] == {"sha256": hashlib.sha256(meta).hexdigest()}
            assert f.get("requires-python") == parse_email(meta)[0].get("requires_python")
        else:
            assert f["core-metadata"] is False
    assert doc["versions"] == sorted({v for v in doc["versions"]})
    assert len(doc["versions"]) == 1


def test_versions_are_in_release_order(main_index, tmp_path):
    name = dists.unique("order")
    for version in ("1.10", "1.9", "2.0rc1", "1.0.post1"):
        wheel = dists.make_wheel(tmp_path, name, version)
        assert dists.upload(main_index.upload_url, wheel, name, version, main_index.auth).ok
    doc = get(main_index, f"{name}/", accept=JSON).json()
    assert doc["versions"] == ["1.0.post1", "1.9", "1.10", "2.0rc1"]


NEGOTIATION = [
    (None, "text/html; charset=utf-8"),
    (PIP_ACCEPT, JSON),
    (UV_ACCEPT, JSON),
    ("text/html", "text/html; charset=utf-8"),
    (HTML, HTML),
    (JSON, JSON),
    ("application/vnd.pypi.simple.latest+json", JSON),
    ("application/vnd.pypi.simple.latest+html", HTML),
    (f"{JSON};q=0.1, text/html", "text/html; charset=utf-8"),
    (f"{JSON};q=0, {HTML};q=0.5", HTML),
    ("*/*", "text/html; charset=utf-8"),
    ("application/*, text/html;q=0.5", HTML),
    ("application/json", "text/html; charset=utf-8"),
]


@pytest.mark.parametrize(("accept", "content_type"), NEGOTIATION)
def test_content_negotiation(twine_uploaded, accept, content_type):
    for path in ("", "requests/"):
        resp = get(twine_uploaded, path, accept=accept)
        assert resp.status_code == 200
        assert resp.headers["Content-Type"] == content_type, (accept, path)
        assert resp.headers["Vary"] == "Accept"
        if content_type == JSON:
            resp.json()
        else:
            assert resp.text.startswith("<!DOCTYPE html>")


@pytest.mark.parametrize(
    ("path", "target"),
    [
        ("Requests/", "requests/"),
        ("requests", "requests/"),
        ("Zope.Event", "zope-event/"),
        ("zope_event/", "zope-event/"),
        ("CHARSET__normalizer/", "charset-normalizer/"),
    ],
)
def test_redirects_to_the_normalized_name(twine_uploaded, path, target):
    resp = get(twine_uploaded, path)
    assert resp.status_code == 301
    assert urljoin(resp.url, resp.headers["Location"]) == twine_uploaded.simple + target


def test_root_without_slash_redirects(twine_uploaded):
    resp = requests.get(
        twine_uploaded.simple.rstrip("/"), auth=twine_uploaded.auth, allow_redirects=False
    )
    assert resp.status_code == 301
    assert urljoin(resp.url, resp.headers["Location"]) == twine_uploaded.simple


def test_unknown_project_is_404(twine_uploaded):
    assert get(twine_uploaded, "no-such-project/").status_code == 404


def test_conditional_requests(main_index, tmp_path):
    name = dists.unique("cond")
    wheel = dists.make_wheel(tmp_path, name, "1.0")
    assert dists.upload(main_index.upload_url, wheel, name, "1.0", main_index.auth).ok
    for accept in (None, JSON):
        first = get(main_index, f"{name}/", accept=accept)
        etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
        assert (
            get(main_index, f"{name}/", accept, headers={"If-None-Match": etag}).status_code == 304
        )
        since = get(main_index, f"{name}/", accept, headers={"If-Modified-Since": modified})
        assert since.status_code == 304
    # The two representations never share an ETag.
    assert (
        get(main_index, f"{name}/").headers["ETag"]
        != get(main_index, f"{name}/", JSON).headers["ETag"]
    )
    before = get(main_index, f"{name}/", JSON)
    yanked = requests.post(
        f"{main_index.base}/projects/{name}/releases/1.0/yank",
        json={"reason": "testing"},
        auth=main_index.auth,
    )
    assert yanked.status_code == 200
    # pip sends both validators; within the same second only the ETag can tell the change.
    stale = {
        "If-None-Match": before.headers["ETag"],
        "If-Modified-Since": before.headers["Last-Modified"],
    }
    after = get(main_index, f"{name}/", JSON, headers=stale)
    assert after.status_code == 200
    assert after.json()["files"][0]["yanked"] == "testing"


def test_range_requests_on_files(twine_uploaded, testdata):
    filename = WHEELS["requests"]
    url = f"{twine_uploaded.base}/files/requests/{filename}"
    data = (testdata / filename).read_bytes()
    head = requests.head(url, auth=twine_uploaded.auth)
    assert head.status_code == 200
    assert head.headers["Accept-Ranges"] == "bytes"
    assert int(head.headers["Content-Length"]) == len(data)
    part = requests.get(url, auth=twine_uploaded.auth, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206
    assert part.content == data[100:200]
    assert part.headers["Content-Range"] == f"bytes 100-199/{len(data)}"
    # uv first reads the zip's end: a suffix range.
    tail = requests.get(url, auth=twine_uploaded.auth, headers={"Range": "bytes=-22"})
    assert tail.status_code == 206 and tail.content == data[-22:]
    etag = requests.get(url, auth=twine_uploaded.auth).headers["ETag"]
    again = requests.get(url, auth=twine_uploaded.auth, headers={"If-None-Match": etag})
    assert again.status_code == 304


def test_metadata_files(twine_uploaded, testdata):
    base = f"{twine_uploaded.base}/files"
    for project, filename in WHEELS.items():
        resp = requests.get(f"{base}/{project}/{filename}.metadata", auth=twine_uploaded.auth)
        assert resp.status_code == 200
        assert resp.content == wheel_metadata(testdata / filename)
    sdist = requests.get(f"{base}/six/six-1.16.0.tar.gz.metadata", auth=twine_uploaded.auth)
    assert sdist.status_code == 404
    assert requests.get(f"{base}/six/nope.whl", auth=twine_uploaded.auth).status_code == 404
    # A file is reached only through its own project.
    wrong = requests.get(f"{base}/idna/{WHEELS['six']}", auth=twine_uploaded.auth)
    assert wrong.status_code == 404


def test_public_registry_reads_anonymously(server, tmp_path):
    from tests.pypi.conftest import Index

    public = Index(server, "acme", "public")
    name = dists.unique("pub")
    wheel = dists.make_wheel(tmp_path, name, "1.0")
    assert dists.upload(public.upload_url, wheel, name, "1.0", public.auth).ok
    anonymous = public.as_user(None)
    assert get(anonymous).status_code == 200
    page = get(anonymous, f"{name}/", JSON)
    assert page.status_code == 200
    assert "public" in page.headers["Cache-Control"]
    url = urljoin(page.url, page.json()["files"][0]["url"])
    assert requests.get(url).content == wheel.read_bytes()
    # Reading is all anonymity allows.
    refused = dists.upload(public.upload_url, wheel, name, "1.0", None)
    assert refused.status_code == 401


def test_private_registry_needs_credentials(twine_uploaded, server):
    anonymous = twine_uploaded.as_user(None)
    for path in ("", "requests/"):
        resp = get(anonymous, path)
        assert resp.status_code == 401
        assert resp.headers["WWW-Authenticate"].startswith("Basic realm=")
    file_url = f"{twine_uploaded.base}/files/requests/{WHEELS['requests']}"
    assert requests.get(file_url).status_code == 401
    assert requests.get(file_url + ".metadata").status_code == 401
    wrong = requests.get(twine_uploaded.simple, auth=("alice", "not-her-password"))
    assert wrong.status_code == 401
    # Another organisation's admin is authenticated but has no role here.
    assert get(twine_uploaded.as_user("mallory")).status_code == 403
    # A viewer reads.
    assert get(twine_uploaded.as_user("victor"), "requests/").status_code == 200
    assert "private" in get(twine_uploaded).headers["Cache-Control"]


def test_registry_tokens_are_bounded_by_their_scope(twine_uploaded, server):
    """A Bearer token from /auth/token reads only the project repositories it names."""
    scope = "repository:acme/main/cargohold.pypi/requests:pull"
    token = requests.get(
        f"{server.url}/auth/token",
        params={"service": "cargohold", "scope": scope},
        auth=twine_uploaded.auth,
        timeout=30,
    ).json()["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    ok = requests.get(f"{twine_uploaded.simple}requests/", headers=bearer, timeout=30)
    assert ok.status_code == 200
    other = requests.get(f"{twine_uploaded.simple}six/", headers=bearer, timeout=30)
    assert other.status_code == 403


def test_root_index_follows_uploads_and_deletes(main_index, tmp_path):
    """The root index is cached per worker; every change of its project set must show at once,
    on every worker (several requests, so both workers answer)."""

    def listed() -> list[set[str]]:
        return [
            {p["name"] for p in get(main_index, "", accept=JSON).json()["projects"]}
            for _ in range(6)
        ]

    name = dists.unique("cached")
    listed()  # warm every worker's cache
    wheel = dists.make_wheel(tmp_path, name, "1.0")
    assert dists.upload(main_index.upload_url, wheel, name, "1.0", main_index.auth).ok
    assert all(name in seen for seen in listed())
    r = requests.delete(
        f"{main_index.base}/projects/{name}/releases/1.0", auth=main_index.auth, timeout=30
    )
    assert r.status_code == 200, r.text
    assert all(name not in seen for seen in listed())
