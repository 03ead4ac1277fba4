"""Console tests: a browser-like HTTP session (cookies, CSRF tokens) against the loopback
server, and content built through the protocols: images, referrers, Python packages."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from html import unescape

import pytest
import requests

from tests.pypi.dists import make_wheel, unique, upload
from tests.support.client import OCIClient, digest_of

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
XSS = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">'


class Console:
    """One person's browser, minus the rendering: a cookie jar and the form's CSRF token."""

    def __init__(self, base: str):
        self.base = base
        self.http = requests.Session()
        self.csrf = ""

    def _plain_http_cookies(self) -> None:
        # A server behind a TLS proxy marks its cookie Secure; tests reach it over plain http.
        for cookie in self.http.cookies:
            cookie.secure = False

    def get(self, path: str, **kw) -> requests.Response:
        r = self.http.get(self.base + path, allow_redirects=kw.pop("allow_redirects", False), **kw)
        self._plain_http_cookies()
        if m := CSRF.search(r.text):
            self.csrf = unescape(m.group(1))
        return r

    def post(self, path: str, data: dict | None = None, csrf: bool = True, **kw):
        body = dict(data or {})
        if csrf:
            if not self.csrf:
                self.get("/sign-in")
            body["csrf_token"] = self.csrf
        r = self.http.post(self.base + path, data=body, allow_redirects=False, **kw)
        self._plain_http_cookies()
        return r

    def follow(self, r: requests.Response) -> requests.Response:
        assert r.status_code in (302, 303), (r.status_code, r.text[:300])
        loc = r.headers["Location"]
        return self.get(loc[len(self.base) :] if loc.startswith("http") else loc)

    def sign_in(self, user: str, password: str) -> requests.Response:
        self.get("/sign-in")
        r = self.post("/sign-in", {"username": user, "password": password})
        assert r.status_code == 302, r.text[:500]
        self.get("/")  # signing in starts a new session, with a new CSRF token
        return r


@pytest.fixture
def console_for(server):
    def make(user: str | None = None) -> Console:
        c = Console(server.url)
        if user:
            c.sign_in(user, server.users[user])
        return c

    return make


@dataclass
class Content:
    repo: str  # path inside acme/main
    image: str
    index: str
    signature: str
    sbom: str
    attestation: str
    project: str
    config: str


def _artifact(client: OCIClient, repo: str, artifact_type: str, subject: dict, body: bytes):
    empty = client.push_blob(repo, b"{}")
    layer = client.push_blob(repo, body)
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": artifact_type,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
        "layers": [
            {
                "mediaType": "application/octet-stream",
                "digest": layer,
                "size": len(body),
                "annotations": {"org.opencontainers.image.title": "evidence.json"},
            }
        ],
        "subject": subject,
        "annotations": {"org.opencontainers.image.created": "2026-01-01T00:00:00Z"},
    }
    body_bytes = json.dumps(manifest).encode()
    r = client.push_manifest(repo, digest_of(body_bytes), manifest)
    assert r.status_code == 201, r.text
    return digest_of(body_bytes), len(body_bytes)


@pytest.fixture(scope="session")
def content(server, tmp_path_factory) -> Content:
    """acme/main: an image with hostile annotations, a signature and an SBOM attached to it, an
    attestation attached to the SBOM, a two-platform index, and a Python project whose
    description carries script."""
    admin = OCIClient(server.url, "admin", server.admin_password)
    path = unique("console/app")
    repo = f"acme/main/{path}"
    image, manifest = admin.push_image(
        repo,
        "v1",
        [b"layer-one", b"layer-two"],
        annotations={
            "org.opencontainers.image.description": XSS,
            "com.example.<b>key</b>": '"><script>window.__xss=3</script>',
        },
    )
    raw = json.dumps(manifest).encode()
    subject = {"mediaType": manifest["mediaType"], "digest": image, "size": len(raw)}
    signature, _ = _artifact(
        admin, repo, "application/vnd.dev.cosign.artifact.sig.v1+json", subject, b"signature"
    )
    sbom, sbom_size = _artifact(admin, repo, "application/spdx+json", subject, b'{"spdx": 1}')
    attestation, _ = _artifact(
        admin,
        repo,
        "application/vnd.in-toto+json",
        {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": sbom,
            "size": sbom_size,
        },
        b'{"predicate": 1}',
    )
    arm, arm_manifest = admin.push_image(repo, "arm64-only", [b"arm-layer"])
    arm_raw = json.dumps(arm_manifest).encode()
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {**subject, "platform": {"os": "linux", "architecture": "amd64"}},
            {
                "mediaType": arm_manifest["mediaType"],
                "digest": arm,
                "size": len(arm_raw),
                "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"},
            },
        ],
    }
    r = admin.push_manifest(repo, "multi", index)
    assert r.status_code == 201, r.text

    chart_config = json.dumps(
        {"name": "shop<script>", "version": "0.3.1", "appVersion": "2.0", "apiVersion": "v2"}
    ).encode()
    chart_repo = f"{repo}-chart"
    chart = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.cncf.helm.config.v1+json",
            "digest": admin.push_blob(chart_repo, chart_config),
            "size": len(chart_config),
        },
        "layers": [
            {
                "mediaType": "application/vnd.cncf.helm.chart.content.v1.tar+gzip",
                "digest": admin.push_blob(chart_repo, b"chart tarball"),
                "size": len(b"chart tarball"),
            }
        ],
    }
    assert admin.push_manifest(chart_repo, "0.3.1", chart).status_code == 201

    project = unique("consoledemo")
    folder = tmp_path_factory.mktemp("console-dists")
    meta = (
        "Metadata-Version: 2.1\n"
        f"Name: {project}\nVersion: 1.0\nSummary: Summary {XSS}\n"
        "Requires-Python: >=3.8\nRequires-Dist: requests>=2\n"
        "Project-URL: Source, javascript:alert(1)\n"
        "Project-URL: Home, https://example.org/\n"
        "Description-Content-Type: text/markdown\n\n"
        f"# Demo heading\n\nSome **bold** text.\n\n{XSS}\n\n"
        '<a href="javascript:alert(4)">link</a>\n'
    )
    for version in ("1.0", "1.1"):
        wheel = make_wheel(
            folder, project, version, meta=meta.replace("Version: 1.0", f"Version: {version}")
        )
        r = upload(
            f"{server.url}/api/v1/acme/main/python/",
            wheel,
            project,
            version,
            ("admin", server.admin_password),
        )
        assert r.status_code == 200, r.text
    return Content(
        repo=path,
        image=image,
        index=digest_of(json.dumps(index).encode()),
        signature=signature,
        sbom=sbom,
        attestation=attestation,
        project=project,
        config=manifest["config"]["digest"],
    )
