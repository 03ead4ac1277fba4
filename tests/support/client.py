"""A small OCI client over requests that follows Bearer challenges like real clients do."""

from __future__ import annotations

import hashlib
import json
import re

import requests

_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class OCIClient:
    def __init__(self, base_url: str, user: str | None = None, password: str | None = None):
        self.base = base_url
        self.auth = (user, password) if user else None
        self.session = requests.Session()
        self.tokens: dict[str, str] = {}

    def _token(self, challenge: str) -> str | None:
        params = dict(_CHALLENGE.findall(challenge))
        if "realm" not in params:
            return None
        query = {"service": params.get("service", "")}
        if "scope" in params:
            query["scope"] = params["scope"]
        r = self.session.get(params["realm"], params=query, auth=self.auth)
        if r.status_code != 200:
            return None
        return r.json()["token"]

    def request(
        self, method: str, path: str, follow_redirects: bool = True, **kwargs
    ) -> requests.Response:
        url = path if path.startswith("http") else self.base + path
        headers = kwargs.pop("headers", {}) or {}
        key = path.split("?")[0]
        if key in self.tokens:
            headers["Authorization"] = f"Bearer {self.tokens[key]}"
        r = self.session.request(method, url, headers=headers, allow_redirects=False, **kwargs)
        # A second challenge may ask for a wider scope than the token fetched for the first.
        for _ in range(2):
            if r.status_code != 401 or "Bearer" not in r.headers.get("WWW-Authenticate", ""):
                break
            token = self._token(r.headers["WWW-Authenticate"])
            if not token:
                break
            self.tokens[key] = token
            headers["Authorization"] = f"Bearer {token}"
            r = self.session.request(method, url, headers=headers, allow_redirects=False, **kwargs)
        if follow_redirects and r.status_code in (302, 307) and method in ("GET", "HEAD"):
            # As real clients do for blobs in object storage: fetch the presigned URL, without
            # the registry's token (the URL carries its own authorisation).
            plain = {k: v for k, v in headers.items() if k.lower() != "authorization"}
            r = requests.request(method, r.headers["Location"], headers=plain, timeout=120)
        return r

    # Conveniences for building content in tests.
    def push_blob(self, repo: str, data: bytes) -> str:
        digest = digest_of(data)
        r = self.request("POST", f"/v2/{repo}/blobs/uploads/?digest={digest}", data=data)
        assert r.status_code == 201, r.text
        return digest

    def push_manifest(
        self, repo: str, ref: str, manifest: dict, media_type: str | None = None
    ) -> requests.Response:
        body = json.dumps(manifest).encode()
        mt = media_type or manifest.get("mediaType", "application/vnd.oci.image.manifest.v1+json")
        return self.request(
            "PUT", f"/v2/{repo}/manifests/{ref}", data=body, headers={"Content-Type": mt}
        )

    def push_image(self, repo: str, ref: str, layers: list[bytes], **extra) -> tuple[str, dict]:
        config = json.dumps({"architecture": "amd64", "os": "linux"}).encode()
        cfg = self.push_blob(repo, config)
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": cfg,
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": self.push_blob(repo, layer),
                    "size": len(layer),
                }
                for layer in layers
            ],
            **extra,
        }
        r = self.push_manifest(repo, ref, manifest)
        assert r.status_code == 201, r.text
        return r.headers["Docker-Content-Digest"], manifest
