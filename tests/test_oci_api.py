"""The OCI Distribution API over a real loopback server, spoken to with HTTP."""

from __future__ import annotations

import hashlib
import json
import os
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import requests

from tests.support.client import digest_of

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def repo(registry: str = "acme/main") -> str:
    return f"{registry}/t{uuid.uuid4().hex[:10]}"


def error_code(r: requests.Response) -> str:
    assert r.headers["Content-Type"].startswith("application/json"), r.text
    return r.json()["errors"][0]["code"]


# ---- authentication ----------------------------------------------------------------------


def test_base_requires_auth_with_bearer_challenge(server):
    r = requests.get(f"{server.url}/v2/")
    assert r.status_code == 401
    challenge = r.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer ")
    assert f'realm="{server.url}/auth/token"' in challenge
    assert 'service="cargohold"' in challenge
    assert error_code(r) == "UNAUTHORIZED"
    assert r.headers["Docker-Distribution-API-Version"] == "registry/2.0"


def test_base_with_token_and_with_basic(server, admin):
    assert admin.request("GET", "/v2/").status_code == 200
    basic = requests.get(f"{server.url}/v2/", auth=("admin", server.admin_password))
    assert basic.status_code == 200
    bad = requests.get(f"{server.url}/v2/", auth=("admin", "wrong-password"))
    assert bad.status_code == 401


def test_token_grants_only_what_is_held(server):
    def access(user, scope):
        r = requests.get(
            f"{server.url}/auth/token",
            params={"service": "cargohold", "scope": scope},
            auth=(user, server.users[user]),
        )
        assert r.status_code == 200
        import jwt

        return jwt.decode(r.json()["token"], options={"verify_signature": False})["access"]

    assert access("alice", "repository:acme/main/x:pull,push") == [
        {"type": "repository", "name": "acme/main/x", "actions": ["pull", "push"]}
    ]
    assert access("victor", "repository:acme/main/x:pull,push")[0]["actions"] == ["pull"]
    assert access("mallory", "repository:acme/main/x:pull,push") == []
    assert access("mallory", "repository:acme/public/x:pull,push")[0]["actions"] == ["pull"]
    assert access("alice", "repository:nosuch/reg/x:pull") == []


def test_token_bad_credentials_and_malformed_scope(server):
    r = requests.get(f"{server.url}/auth/token", auth=("alice", "nope-nope"))
    assert r.status_code == 401
    r = requests.get(
        f"{server.url}/auth/token",
        params={"scope": "garbage"},
        auth=("alice", server.users["alice"]),
    )
    assert r.status_code == 400


def test_oauth2_password_and_refresh_grants(server):
    r = requests.post(
        f"{server.url}/auth/token",
        data={
            "grant_type": "password",
            "username": "alice",
            "password": server.users["alice"],
            "service": "cargohold",
            "scope": "repository:acme/main/x:pull",
            "access_type": "offline",
            "client_id": "test",
        },
    )
    assert r.status_code == 200, r.text
    refresh = r.json()["refresh_token"]
    r = requests.post(
        f"{server.url}/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh, "service": "cargohold"},
    )
    assert r.status_code == 200 and r.json()["access_token"]
    # An access token is not a refresh token.
    r2 = requests.post(
        f"{server.url}/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": r.json()["access_token"]},
    )
    assert r2.status_code == 401


def test_forged_token_is_refused(server):
    import jwt

    forged = jwt.encode(
        {
            "sub": "alice",
            "aud": "cargohold",
            "iss": "cargohold",
            "exp": 2**33,
            "iat": 0,
            "nbf": 0,
            "typ": "access",
            "access": [{"type": "repository", "name": "acme/main/x", "actions": ["pull"]}],
        },
        "not-the-key",
        algorithm="HS256",
    )
    r = requests.get(
        f"{server.url}/v2/acme/main/x/tags/list", headers={"Authorization": f"Bearer {forged}"}
    )
    assert r.status_code == 401 and error_code(r) == "UNAUTHORIZED"


# ---- blobs -------------------------------------------------------------------------------


def test_monolithic_post_put_and_pull(admin):
    name = repo()
    data = os.urandom(3000)
    digest = digest_of(data)
    r = admin.request("POST", f"/v2/{name}/blobs/uploads/")
    assert r.status_code == 202
    assert r.headers["Range"] == "0-0"
    assert r.headers["Docker-Upload-UUID"]
    location = r.headers["Location"]
    r = admin.request(
        "PUT",
        f"{location}?digest={digest}",
        data=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert r.status_code == 201, r.text
    assert r.headers["Location"] == f"/v2/{name}/blobs/{digest}"
    assert r.headers["Docker-Content-Digest"] == digest

    r = admin.request("HEAD", f"/v2/{name}/blobs/{digest}")
    assert r.status_code == 200
    assert r.headers["Content-Length"] == "3000"
    assert r.headers["Docker-Content-Digest"] == digest
    r = admin.request("GET", f"/v2/{name}/blobs/{digest}")
    assert r.content == data


@pytest.mark.inprocess
def test_range_and_conditional_blob_get(admin):
    name = repo()
    data = bytes(range(256)) * 4
    digest = admin.push_blob(name, data)
    r = admin.request("GET", f"/v2/{name}/blobs/{digest}", headers={"Range": "bytes=10-19"})
    assert r.status_code == 206
    assert r.content == data[10:20]
    assert r.headers["Content-Range"] == f"bytes 10-19/{len(data)}"
    etag = admin.request("GET", f"/v2/{name}/blobs/{digest}").headers["ETag"]
    r = admin.request("GET", f"/v2/{name}/blobs/{digest}", headers={"If-None-Match": etag})
    assert r.status_code == 304


@pytest.mark.inprocess
def test_chunked_upload_with_out_of_order_chunk(admin):
    name = repo()
    data = os.urandom(10_000)
    digest = digest_of(data)
    location = admin.request("POST", f"/v2/{name}/blobs/uploads/").headers["Location"]
    r = admin.request(
        "PATCH",
        location,
        data=data[:4000],
        headers={"Content-Range": "0-3999", "Content-Type": "application/octet-stream"},
    )
    assert r.status_code == 202
    assert r.headers["Range"] == "0-3999"
    location = r.headers["Location"]
    # A chunk that does not continue where the upload is gets 416 and the current Range.
    r = admin.request(
        "PATCH", location, data=data[5000:6000], headers={"Content-Range": "5000-5999"}
    )
    assert r.status_code == 416
    assert r.headers["Range"] == "0-3999"
    assert error_code(r) == "BLOB_UPLOAD_INVALID"
    r = admin.request("GET", location)
    assert r.status_code == 204 and r.headers["Range"] == "0-3999"
    r = admin.request(
        "PATCH", location, data=data[4000:], headers={"Content-Range": f"4000-{len(data) - 1}"}
    )
    assert r.status_code == 202
    r = admin.request("PUT", f"{location}?digest={digest}")
    assert r.status_code == 201
    assert admin.request("GET", f"/v2/{name}/blobs/{digest}").content == data


def test_streamed_patch_without_content_range_and_final_chunk_in_put(admin):
    name = repo()
    data = os.urandom(5000)
    location = admin.request("POST", f"/v2/{name}/blobs/uploads/").headers["Location"]
    # A streamed body cannot be replayed after a 401, so fetch the token first.
    assert admin.request("GET", location).status_code == 204
    r = admin.request("PATCH", location, data=iter([data[:1000], data[1000:2000]]))
    assert r.status_code == 202 and r.headers["Range"] == "0-1999"
    r = admin.request(
        "PUT",
        f"{location}?digest={digest_of(data)}",
        data=data[2000:],
        headers={"Content-Range": f"2000-{len(data) - 1}"},
    )
    assert r.status_code == 201


@pytest.mark.inprocess
def test_sha512_blob(admin):
    name = repo()
    data = b"sha512 content"
    digest = "sha512:" + hashlib.sha512(data).hexdigest()
    r = admin.request("POST", f"/v2/{name}/blobs/uploads/?digest={digest}", data=data)
    assert r.status_code == 201
    assert admin.request("GET", f"/v2/{name}/blobs/{digest}").content == data


@pytest.mark.inprocess
def test_wrong_digest_is_refused_and_nothing_stored(admin):
    name = repo()
    data = b"some bytes"
    wrong = digest_of(b"other bytes")
    r = admin.request("POST", f"/v2/{name}/blobs/uploads/?digest={wrong}", data=data)
    assert r.status_code == 400 and error_code(r) == "DIGEST_INVALID"
    assert admin.request("HEAD", f"/v2/{name}/blobs/{wrong}").status_code == 404
    r = admin.request("POST", f"/v2/{name}/blobs/uploads/?digest=sha256:nothex", data=data)
    assert r.status_code == 400 and error_code(r) == "DIGEST_INVALID"
    location = admin.request("POST", f"/v2/{name}/blobs/uploads/").headers["Location"]
    r = admin.request("PUT", location, data=data)
    assert r.status_code == 400 and error_code(r) == "DIGEST_INVALID"


@pytest.mark.inprocess
def test_unknown_upload_and_cancel(admin):
    name = repo()
    admin.push_blob(name, b"x")  # makes the repository exist
    r = admin.request("GET", f"/v2/{name}/blobs/uploads/{uuid.uuid4().hex}")
    assert r.status_code == 404 and error_code(r) == "BLOB_UPLOAD_UNKNOWN"
    location = admin.request("POST", f"/v2/{name}/blobs/uploads/").headers["Location"]
    assert admin.request("DELETE", location).status_code == 204
    r = admin.request("PATCH", location, data=b"late")
    assert r.status_code == 404 and error_code(r) == "BLOB_UPLOAD_UNKNOWN"


def test_upload_session_is_bound_to_its_repository_and_principal(server, admin, client_for):
    name, other = repo(), repo()
    admin.push_blob(other, b"y")
    location = admin.request("POST", f"/v2/{name}/blobs/uploads/").headers["Location"]
    upload_id = location.rsplit("/", 1)[1]
    r = admin.request("GET", f"/v2/{other}/blobs/uploads/{upload_id}")
    assert r.status_code == 404
    # alice may push to acme/main, but the session belongs to admin.
    r = client_for("alice").request("GET", location)
    assert r.status_code == 404


@pytest.mark.inprocess
def test_unknown_blob_and_blob_delete(admin):
    name = repo()
    digest = admin.push_blob(name, b"to delete")
    r = admin.request("GET", f"/v2/{name}/blobs/{digest_of(b'never pushed')}")
    assert r.status_code == 404 and error_code(r) == "BLOB_UNKNOWN"
    assert admin.request("DELETE", f"/v2/{name}/blobs/{digest}").status_code == 202
    assert admin.request("GET", f"/v2/{name}/blobs/{digest}").status_code == 404
    r = admin.request("DELETE", f"/v2/{name}/blobs/{digest}")
    assert r.status_code == 404 and error_code(r) == "BLOB_UNKNOWN"


def test_cross_repository_mount(admin, client_for):
    source, target = repo(), repo("acme/second")
    digest = admin.push_blob(source, b"mount me")
    r = admin.request("POST", f"/v2/{target}/blobs/uploads/?mount={digest}&from={source}")
    assert r.status_code == 201
    assert r.headers["Location"] == f"/v2/{target}/blobs/{digest}"
    assert admin.request("GET", f"/v2/{target}/blobs/{digest}").content == b"mount me"
    # A blob that is not in the source: a normal upload session instead.
    missing = digest_of(b"absent")
    r = admin.request("POST", f"/v2/{target}/blobs/uploads/?mount={missing}&from={source}")
    assert r.status_code == 202 and "/blobs/uploads/" in r.headers["Location"]


def test_mount_from_another_tenant_falls_back_to_upload(admin, client_for):
    secret = repo()
    digest = admin.push_blob(secret, b"acme secret layer")
    mallory = client_for("mallory")
    target = repo("other/private")
    r = mallory.request("POST", f"/v2/{target}/blobs/uploads/?mount={digest}&from={secret}")
    assert r.status_code == 202
    assert mallory.request("GET", f"/v2/{target}/blobs/{digest}").status_code == 404


def _token(server, user: str, scope: str) -> str:
    r = requests.get(
        f"{server.url}/auth/token",
        params={"service": "cargohold", "scope": scope},
        auth=(user, server.users[user]),
    )
    assert r.status_code == 200, r.text
    return r.json()["token"]


def _mount_with_one_token(server, user: str, target: str, source: str, digest: str):
    """As the conformance suite does: one token, fetched with the scopes of the first challenge."""
    url = f"{server.url}/v2/{target}/blobs/uploads/?mount={digest}&from={source}"
    first = requests.post(url)
    assert first.status_code == 401
    scope = dict(re.findall(r'(\w+)="([^"]*)"', first.headers["WWW-Authenticate"]))["scope"]
    token = _token(server, user, scope)
    return scope, requests.post(url, headers={"Authorization": f"Bearer {token}"})


def test_mount_challenge_names_the_source_and_one_token_suffices(server, admin):
    source, target = repo(), repo("acme/second")
    digest = admin.push_blob(source, b"mount with one token")
    scope, r = _mount_with_one_token(server, "alice", target, source, digest)
    assert scope.split(" ") == [f"repository:{target}:pull,push", f"repository:{source}:pull"]
    assert r.status_code == 201, r.text
    assert r.headers["Location"] == f"/v2/{target}/blobs/{digest}"
    assert admin.request("GET", f"/v2/{target}/blobs/{digest}").content == b"mount with one token"


def test_mount_without_pull_on_the_source_is_an_upload_session(server, admin):
    source = repo()
    digest = admin.push_blob(source, b"not everyone's to mount")
    # mallory may push to her own registry but not read acme's: her token has no pull on it.
    target = repo("other/private")
    _scope, r = _mount_with_one_token(server, "mallory", target, source, digest)
    assert r.status_code == 202, r.text
    assert "/blobs/uploads/" in r.headers["Location"]
    # alice may read the source, but this token was fetched for the target alone.
    target = repo("acme/second")
    token = _token(server, "alice", f"repository:{target}:pull,push")
    r = requests.post(
        f"{server.url}/v2/{target}/blobs/uploads/?mount={digest}&from={source}",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 202, r.text
    assert "/blobs/uploads/" in r.headers["Location"]


# ---- manifests ---------------------------------------------------------------------------


@pytest.mark.inprocess
def test_manifest_push_pull_by_tag_and_digest(admin):
    name = repo()
    digest, manifest = admin.push_image(name, "v1", [b"layer one", b"layer two"])
    for ref in ("v1", digest):
        r = admin.request("GET", f"/v2/{name}/manifests/{ref}", headers={"Accept": OCI_MANIFEST})
        assert r.status_code == 200
        assert r.headers["Content-Type"] == OCI_MANIFEST
        assert r.headers["Docker-Content-Digest"] == digest
        assert int(r.headers["Content-Length"]) == len(r.content)
        assert digest_of(r.content) == digest
        head = admin.request("HEAD", f"/v2/{name}/manifests/{ref}")
        assert head.status_code == 200 and head.headers["Content-Length"] == str(len(r.content))
        assert head.content == b""


@pytest.mark.inprocess
def test_docker_schema2_and_manifest_list(admin):
    name = repo()
    config = b'{"architecture":"amd64","os":"linux"}'
    layer = b"docker layer"
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "digest": admin.push_blob(name, config),
            "size": len(config),
        },
        "layers": [
            {
                "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                "digest": admin.push_blob(name, layer),
                "size": len(layer),
            }
        ],
    }
    r = admin.push_manifest(name, "amd64", manifest)
    assert r.status_code == 201, r.text
    child = r.headers["Docker-Content-Digest"]
    size = int(admin.request("HEAD", f"/v2/{name}/manifests/{child}").headers["Content-Length"])
    mlist = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
        "manifests": [
            {
                "mediaType": manifest["mediaType"],
                "digest": child,
                "size": size,
                "platform": {"architecture": "amd64", "os": "linux"},
            }
        ],
    }
    r = admin.push_manifest(name, "latest", mlist)
    assert r.status_code == 201, r.text
    r = admin.request(
        "GET",
        f"/v2/{name}/manifests/latest",
        headers={"Accept": "application/vnd.docker.distribution.manifest.list.v2+json"},
    )
    assert r.headers["Content-Type"] == mlist["mediaType"]
    # A client that accepts only single-image manifests is not handed a list.
    r = admin.request(
        "GET",
        f"/v2/{name}/manifests/latest",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
    )
    assert r.status_code == 404 and error_code(r) == "MANIFEST_UNKNOWN"


@pytest.mark.inprocess
def test_index_requires_children_in_repository(admin):
    name, elsewhere = repo(), repo()
    child, _ = admin.push_image(elsewhere, "x", [b"l"])
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": child, "size": 100}],
    }
    r = admin.push_manifest(name, "idx", index)
    assert r.status_code == 400 and error_code(r) == "MANIFEST_BLOB_UNKNOWN"


def test_manifest_referring_to_blob_in_another_repository_is_refused(admin):
    name, elsewhere = repo(), repo()
    layer = b"lives elsewhere"
    digest = admin.push_blob(elsewhere, layer)
    config = b"{}"
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": admin.push_blob(name, config),
            "size": 2,
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": digest,
                "size": len(layer),
            }
        ],
    }
    r = admin.push_manifest(name, "v1", manifest)
    assert r.status_code == 400 and error_code(r) == "MANIFEST_BLOB_UNKNOWN"
    manifest["layers"][0]["digest"] = admin.push_blob(name, layer)
    manifest["layers"][0]["size"] = 999
    r = admin.push_manifest(name, "v1", manifest)
    assert r.status_code == 400 and error_code(r) == "MANIFEST_INVALID"
    assert admin.request("GET", f"/v2/{name}/manifests/v1").status_code == 404


@pytest.mark.inprocess
@pytest.mark.parametrize(
    "body,content_type",
    [
        (b"{broken", OCI_MANIFEST),
        (
            b'{"schemaVersion": 1, "name": "x", "fsLayers": []}',
            "application/vnd.docker.distribution.manifest.v1+prettyjws",
        ),
        (
            b'{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json"}',
            OCI_MANIFEST,
        ),
    ],
)
def test_invalid_manifest_bodies(admin, body, content_type):
    name = repo()
    r = admin.request(
        "PUT", f"/v2/{name}/manifests/v1", data=body, headers={"Content-Type": content_type}
    )
    assert r.status_code == 400 and error_code(r) == "MANIFEST_INVALID"


@pytest.mark.inprocess
def test_oversized_manifest_and_wrong_manifest_digest(admin):
    name = repo()
    huge = json.dumps({"schemaVersion": 2, "annotations": {"x": "y" * (4 * 1024 * 1024)}})
    r = admin.request(
        "PUT", f"/v2/{name}/manifests/big", data=huge, headers={"Content-Type": OCI_MANIFEST}
    )
    assert r.status_code == 413 and error_code(r) == "MANIFEST_INVALID"
    digest, manifest = admin.push_image(name, "v1", [b"abc"])
    r = admin.push_manifest(name, digest_of(b"something else"), manifest)
    assert r.status_code == 400 and error_code(r) == "DIGEST_INVALID"
    # What was stored before is untouched by the refused pushes.
    assert (
        admin.request("GET", f"/v2/{name}/manifests/v1").headers["Docker-Content-Digest"] == digest
    )


@pytest.mark.inprocess
def test_invalid_names_and_tags(admin):
    for bad in ("acme/main/UPPER", "acme/main/../etc", "acme/main/" + "a" * 250, "acme/main"):
        r = admin.request("GET", f"/v2/{bad}/tags/list")
        assert r.status_code == 400 and error_code(r) == "NAME_INVALID", bad
    name = repo()
    _, manifest = admin.push_image(name, "ok", [b"q"])
    r = admin.push_manifest(name, "-bad", manifest)
    assert r.status_code == 400 and error_code(r) == "MANIFEST_INVALID"


@pytest.mark.inprocess
def test_unknown_tenant_is_never_created(admin):
    r = admin.request("POST", "/v2/nosuchorg/main/app/blobs/uploads/")
    assert r.status_code in (401, 403)
    r = admin.request("POST", "/v2/acme/nosuchregistry/app/blobs/uploads/")
    assert r.status_code in (401, 403)


@pytest.mark.inprocess
def test_unknown_manifest_and_repository(admin):
    name = repo()
    r = admin.request("GET", f"/v2/{name}/manifests/latest")
    assert r.status_code == 404 and error_code(r) == "NAME_UNKNOWN"
    admin.push_image(name, "v1", [b"z"])
    r = admin.request("GET", f"/v2/{name}/manifests/nope")
    assert r.status_code == 404 and error_code(r) == "MANIFEST_UNKNOWN"


@pytest.mark.inprocess
def test_push_by_digest_with_tag_parameters(admin):
    name = repo()
    _, manifest = admin.push_image(name, "first", [b"t"])
    body = json.dumps({**manifest, "annotations": {"v": "2"}}).encode()
    digest = digest_of(body)
    r = admin.request(
        "PUT",
        f"/v2/{name}/manifests/{digest}?tag=a&tag=b",
        data=body,
        headers={"Content-Type": OCI_MANIFEST},
    )
    assert r.status_code == 201
    assert set(r.raw.headers.getlist("OCI-Tag")) == {"a", "b"}
    tags = admin.request("GET", f"/v2/{name}/tags/list").json()["tags"]
    assert tags == ["a", "b", "first"]


@pytest.mark.inprocess
def test_delete_tag_then_manifest(admin):
    name = repo()
    digest, _ = admin.push_image(name, "one", [b"d"])
    admin.push_manifest(
        name, "two", json.loads(admin.request("GET", f"/v2/{name}/manifests/one").content)
    )
    assert admin.request("DELETE", f"/v2/{name}/manifests/one").status_code == 202
    assert admin.request("GET", f"/v2/{name}/manifests/one").status_code == 404
    assert admin.request("GET", f"/v2/{name}/manifests/two").status_code == 200
    assert admin.request("DELETE", f"/v2/{name}/manifests/{digest}").status_code == 202
    for ref in ("two", digest):
        assert admin.request("GET", f"/v2/{name}/manifests/{ref}").status_code == 404
    r = admin.request("DELETE", f"/v2/{name}/manifests/{digest}")
    assert r.status_code == 404 and error_code(r) == "MANIFEST_UNKNOWN"


# ---- discovery ---------------------------------------------------------------------------


@pytest.mark.inprocess
def test_tags_pagination(admin):
    name = repo()
    digest, manifest = admin.push_image(name, "t0", [b"p"])
    body = json.dumps(manifest).encode()
    names = sorted(["t0", "b", "a", "c", "Z", "t10", "t2"])
    for tag in names:
        admin.request(
            "PUT", f"/v2/{name}/manifests/{tag}", data=body, headers={"Content-Type": OCI_MANIFEST}
        )
    assert admin.request("GET", f"/v2/{name}/tags/list").json() == {"name": name, "tags": names}
    seen, url = [], f"/v2/{name}/tags/list?n=3"
    while url:
        r = admin.request("GET", url)
        page = r.json()["tags"]
        assert len(page) <= 3
        seen += page
        link = r.headers.get("Link")
        url = link.split(";")[0].strip("<>") if link else None
    assert seen == names
    r = admin.request("GET", f"/v2/{name}/tags/list?n=2&last=b")
    assert r.json()["tags"] == ["c", "t0"]
    assert admin.request("GET", f"/v2/{name}/tags/list?n=0").json()["tags"] == []


@pytest.mark.inprocess
def test_referrers(admin):
    name = repo()
    subject, _ = admin.push_image(name, "app", [b"app layer"])
    size = int(admin.request("HEAD", f"/v2/{name}/manifests/{subject}").headers["Content-Length"])
    empty = admin.push_blob(name, b"{}")
    sbom_blob = admin.push_blob(name, b'{"sbom": true}')

    def artifact(artifact_type, note):
        return {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": artifact_type,
            "config": {
                "mediaType": "application/vnd.oci.empty.v1+json",
                "digest": empty,
                "size": 2,
            },
            "layers": [{"mediaType": "application/json", "digest": sbom_blob, "size": 14}],
            "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": size},
            "annotations": {"note": note},
        }

    sbom = artifact("application/vnd.example.sbom", "sbom")
    sig = artifact("application/vnd.example.sig", "sig")
    r = admin.push_manifest(name, digest_of(json.dumps(sbom).encode()), sbom)
    assert r.status_code == 201 and r.headers["OCI-Subject"] == subject
    sbom_digest = r.headers["Docker-Content-Digest"]
    assert admin.push_manifest(name, digest_of(json.dumps(sig).encode()), sig).status_code == 201

    r = admin.request("GET", f"/v2/{name}/referrers/{subject}")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == OCI_INDEX
    index = r.json()
    assert index["schemaVersion"] == 2 and index["mediaType"] == OCI_INDEX
    assert {m["artifactType"] for m in index["manifests"]} == {
        "application/vnd.example.sbom",
        "application/vnd.example.sig",
    }
    assert all(m["annotations"]["note"] in ("sbom", "sig") for m in index["manifests"])

    r = admin.request(
        "GET", f"/v2/{name}/referrers/{subject}?artifactType=application/vnd.example.sbom"
    )
    assert r.headers["OCI-Filters-Applied"] == "artifactType"
    assert [m["digest"] for m in r.json()["manifests"]] == [sbom_digest]

    unknown = admin.request("GET", f"/v2/{name}/referrers/{digest_of(b'nothing')}")
    assert unknown.status_code == 200 and unknown.json()["manifests"] == []
    bad = admin.request("GET", f"/v2/{name}/referrers/sha256:bad")
    assert bad.status_code == 400 and error_code(bad) == "DIGEST_INVALID"

    # Deleting a referrer removes it from the index.
    assert admin.request("DELETE", f"/v2/{name}/manifests/{sbom_digest}").status_code == 202
    r = admin.request("GET", f"/v2/{name}/referrers/{subject}")
    assert [m["artifactType"] for m in r.json()["manifests"]] == ["application/vnd.example.sig"]


def test_catalog_shows_only_visible_repositories(admin, client_for):
    mine = repo()
    admin.push_image(mine, "v1", [b"c"])
    mallory = client_for("mallory")
    theirs = repo("other/private")
    mallory.push_image(theirs, "v1", [b"m"])
    admin_names = admin.request("GET", "/v2/_catalog").json()["repositories"]
    mallory_names = mallory.request("GET", "/v2/_catalog").json()["repositories"]
    assert mine in admin_names and theirs not in admin_names
    assert theirs in mallory_names and mine not in mallory_names
    assert admin_names == sorted(admin_names)
    page = admin.request("GET", "/v2/_catalog?n=1")
    assert len(page.json()["repositories"]) == 1 and 'rel="next"' in page.headers["Link"]


# ---- tenancy -----------------------------------------------------------------------------


def test_other_tenant_cannot_read_or_write(admin, client_for):
    name = repo()
    digest, _ = admin.push_image(name, "v1", [b"private"])
    mallory = client_for("mallory")
    for method, path in [
        ("GET", f"/v2/{name}/manifests/v1"),
        ("GET", f"/v2/{name}/tags/list"),
        ("GET", f"/v2/{name}/referrers/{digest}"),
        ("POST", f"/v2/{name}/blobs/uploads/"),
        ("DELETE", f"/v2/{name}/manifests/{digest}"),
    ]:
        r = mallory.request(method, path)
        assert r.status_code in (401, 403), (method, path, r.status_code)
        assert error_code(r) in ("UNAUTHORIZED", "DENIED")
    anonymous = client_for(None)
    assert anonymous.request("GET", f"/v2/{name}/manifests/v1").status_code == 401


def test_viewer_pulls_but_cannot_push_or_delete(admin, client_for):
    name = repo()
    digest, manifest = admin.push_image(name, "v1", [b"view"])
    victor = client_for("victor")
    assert victor.request("GET", f"/v2/{name}/manifests/v1").status_code == 200
    assert victor.request("POST", f"/v2/{name}/blobs/uploads/").status_code in (401, 403)
    assert victor.request("DELETE", f"/v2/{name}/manifests/{digest}").status_code in (401, 403)


def test_public_registry_anonymous_pull_only(admin, client_for):
    name = repo("acme/public")
    digest, _ = admin.push_image(name, "v1", [b"public"])
    anonymous = client_for(None)
    r = anonymous.request("GET", f"/v2/{name}/manifests/v1")
    assert r.status_code == 200 and r.headers["Docker-Content-Digest"] == digest
    assert anonymous.request("POST", f"/v2/{name}/blobs/uploads/").status_code == 401
    mallory = client_for("mallory")
    assert mallory.request("GET", f"/v2/{name}/manifests/v1").status_code == 200
    assert mallory.request("POST", f"/v2/{name}/blobs/uploads/").status_code == 403


def test_basic_auth_on_v2_routes(server, admin):
    name = repo()
    admin.push_image(name, "v1", [b"basic"])
    r = requests.get(f"{server.url}/v2/{name}/tags/list", auth=("alice", server.users["alice"]))
    assert r.status_code == 200
    r = requests.get(f"{server.url}/v2/{name}/tags/list", auth=("mallory", server.users["mallory"]))
    assert r.status_code == 403 and error_code(r) == "DENIED"


@pytest.mark.inprocess
def test_unsupported_method(admin):
    r = admin.request("POST", f"/v2/{repo()}/tags/list")
    assert r.status_code == 405 and error_code(r) == "UNSUPPORTED"


def test_a_chunk_stamps_its_session_at_most_once_a_minute(server, admin):
    """A PATCH is not a database write while the session's stamp is fresh: on SQLite every
    write waits for the one writer."""
    location = admin.request("POST", "/v2/acme/main/stamp/app/blobs/uploads/").headers["Location"]
    upload_id = location.rstrip("/").split("/")[-1].split("?")[0]

    def stamp():
        return server.sql("SELECT updated_at FROM uploads WHERE id = ?", upload_id)[0][0]

    opened = stamp()
    r = admin.request("PATCH", location, data=b"first", headers={"Content-Range": "0-4"})
    assert r.status_code == 202 and stamp() == opened
    two_minutes_ago = (datetime.now(UTC) - timedelta(minutes=2)).strftime("%Y-%m-%d %H:%M:%S")
    server.sql("UPDATE uploads SET updated_at = ? WHERE id = ?", two_minutes_ago, upload_id)
    aged = stamp()
    r = admin.request(
        "PATCH", r.headers["Location"], data=b"second", headers={"Content-Range": "5-10"}
    )
    assert r.status_code == 202 and stamp() > aged


def test_abandoned_uploads_are_swept(server, admin):
    repo = "acme/main/sweep/app"
    r = admin.request("POST", f"/v2/{repo}/blobs/uploads/")
    old = r.headers["Location"]
    r = admin.request("PATCH", old, data=b"abandoned", headers={"Content-Range": "0-8"})
    assert r.status_code == 202
    fresh = admin.request("POST", f"/v2/{repo}/blobs/uploads/").headers["Location"]
    busy = admin.request("POST", f"/v2/{repo}/blobs/uploads/").headers["Location"]

    def session_id(location: str) -> str:
        return location.rstrip("/").split("/")[-1].split("?")[0]

    long_ago = "2000-01-01 00:00:00"
    server.sql(
        "UPDATE uploads SET created_at = ?, updated_at = ? WHERE id = ?",
        long_ago,
        long_ago,
        session_id(old),
    )
    # Opened long ago but still sending: its next chunk stamps it, and the sweep spares it.
    server.sql(
        "UPDATE uploads SET created_at = ?, updated_at = ? WHERE id = ?",
        long_ago,
        long_ago,
        session_id(busy),
    )
    r = admin.request("PATCH", busy, data=b"still here", headers={"Content-Range": "0-9"})
    assert r.status_code == 202
    # Idle for five minutes: under the sweep's floor of ten, whatever it is asked.
    five_minutes_ago = (datetime.now(UTC) - timedelta(minutes=5)).strftime("%Y-%m-%d %H:%M:%S")
    server.sql(
        "UPDATE uploads SET updated_at = ? WHERE id = ?", five_minutes_ago, session_id(fresh)
    )
    out = server.flask("uploads", "sweep", "--older-than-hours", "0.01")
    assert "aborted 1 " in out
    assert admin.request("GET", r.headers["Location"]).status_code == 204
    r = admin.request("PATCH", old, data=b"more", headers={"Content-Range": "9-12"})
    assert r.status_code == 404
    assert r.json()["errors"][0]["code"] == "BLOB_UPLOAD_UNKNOWN"
    # A young session is left alone.
    assert admin.request("GET", fresh).status_code == 204
