"""Cargohold on its production backends: PostgreSQL and S3 (SeaweedFS), replicas included.

Each server gets a database of its own (created here with a random name) and a key prefix of its
own in the shared bucket, so these tests never see each other's rows or objects.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
import requests

from tests.support.client import OCIClient, digest_of
from tests.support.server import Server, free_port, make_server
from tests.support.services import Services, require_services, unique_prefix

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def services() -> Services:
    return require_services()


@pytest.fixture(scope="module")
def backends(services, tmp_path_factory):
    """Start servers on fresh databases and prefixes; tear all of it down afterwards."""
    made: list[tuple[Server, str, str]] = []

    def start(**extra: str) -> Server:
        url, prefix = services.create_database(), unique_prefix()
        srv = make_server(
            tmp_path_factory.mktemp("pg"), extra_env=services.server_env(url, prefix, **extra)
        )
        srv.start()
        made.append((srv, url, prefix))
        return srv

    yield start
    for srv, url, prefix in made:
        srv.stop()
        services.drop_database(url)
        services.purge(prefix)


def replica(server: Server, data_dir: Path, **extra: str) -> Server:
    """Another server on the same database and bucket prefix, as a second replica would be."""
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {**server.env, "CARGOHOLD_DATA_DIR": str(data_dir), **extra}
    other = replace(server, data_dir=data_dir, port=free_port(), env=env, proc=None)
    other.users = dict(server.users)
    other.start()
    return other


def send_partial_patch(port: int, path: str, token: str, first: int, body: bytes, total: int):
    """Start a PATCH of `total` bytes from offset `first` but send only `body`: a client still
    sending when the server dies."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(
        (
            f"PATCH {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/octet-stream\r\n"
            f"Content-Range: {first}-{first + total - 1}\r\nContent-Length: {total}\r\n\r\n"
        ).encode()
        + body
    )
    return sock


@pytest.fixture(scope="module")
def server(backends) -> Server:
    return backends()


@pytest.fixture
def admin(server) -> OCIClient:
    return OCIClient(server.url, "admin", server.admin_password)


def pull(client: OCIClient, repo: str, digest: str) -> bytes:
    """GET a blob as a client would: follow the redirect to the object store."""
    r = client.request("GET", f"/v2/{repo}/blobs/{digest}", follow_redirects=False)
    if r.status_code == 307:
        # The presigned URL carries its own authorisation; our bearer token must not go along.
        r = requests.get(r.headers["Location"], timeout=60)
    assert r.status_code == 200, r.text
    return r.content


def test_push_and_pull_an_image(admin):
    repo = "acme/main/app"
    layers = [os.urandom(6 * MiB + 11), b"small layer"]
    digest, manifest = admin.push_image(repo, "v1", layers)
    r = admin.request(
        "GET",
        f"/v2/{repo}/manifests/v1",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
    )
    assert r.status_code == 200 and r.headers["Docker-Content-Digest"] == digest
    assert json.loads(r.content) == manifest
    for desc, layer in zip(manifest["layers"], layers, strict=True):
        assert pull(admin, repo, desc["digest"]) == layer


def test_blob_get_redirects_to_a_presigned_url(admin):
    repo = "acme/main/redirect"
    data = os.urandom(100_000)
    digest = admin.push_blob(repo, data)
    r = admin.request("GET", f"/v2/{repo}/blobs/{digest}", follow_redirects=False)
    assert r.status_code == 307
    assert r.headers["Docker-Content-Digest"] == digest
    location = r.headers["Location"]
    assert "X-Amz-Signature=" in location
    fetched = requests.get(location, timeout=30)
    assert fetched.status_code == 200 and fetched.content == data
    # HEAD is answered by the registry: the URL is signed for GET only.
    r = admin.request("HEAD", f"/v2/{repo}/blobs/{digest}")
    assert r.status_code == 200 and r.headers["Content-Length"] == str(len(data))
    assert "Location" not in r.headers
    # The tenant boundary holds on S3 too: another repository has no link to the blob.
    assert admin.request("GET", f"/v2/acme/main/other/blobs/{digest}").status_code == 404


def test_blob_get_streams_when_redirects_are_off(server, admin, tmp_path):
    repo = "acme/main/streamed"
    data = os.urandom(5 * MiB + 3)
    digest = admin.push_blob(repo, data)
    direct = replica(server, tmp_path / "direct", CARGOHOLD_S3_REDIRECT="false")
    try:
        client = OCIClient(direct.url, "admin", direct.admin_password)
        r = client.request("GET", f"/v2/{repo}/blobs/{digest}")
        assert r.status_code == 200, r.text
        assert r.headers["Content-Length"] == str(len(data)) and r.content == data
        r = client.request(
            "GET", f"/v2/{repo}/blobs/{digest}", headers={"If-None-Match": f'"{digest}"'}
        )
        assert r.status_code == 304
    finally:
        direct.stop()


def test_digest_mismatch_leaves_nothing_in_the_bucket(services, server, admin):
    repo = "acme/main/mismatch"
    data = os.urandom(6 * MiB)
    wrong = digest_of(b"not this")
    location = admin.request("POST", f"/v2/{repo}/blobs/uploads/").headers["Location"]
    r = admin.request("PATCH", location, data=data[: 3 * MiB])
    assert r.status_code == 202
    r = admin.request("PUT", f"{location}?digest={wrong}", data=data[3 * MiB :])
    assert r.status_code == 400 and r.json()["errors"][0]["code"] == "DIGEST_INVALID"
    prefix = server.env["CARGOHOLD_S3_PREFIX"] + "/"
    upload_id = location.rsplit("/", 1)[1]
    assert services.keys(f"{prefix}uploads/{upload_id}/") == []
    assert services.multipart_uploads(f"{prefix}uploads/{upload_id}/") == []
    for d in (wrong, digest_of(data)):
        assert admin.request("HEAD", f"/v2/{repo}/blobs/{d}").status_code == 404
        assert services.keys(f"{prefix}blobs/sha256/{d[7:9]}/{d[7:]}") == []


def test_listings_are_in_byte_order(admin):
    """The database's collation is ICU en-US (a < B); tags and the catalog sort by bytes."""
    repo = "acme/main/order"
    digest, _ = admin.push_image(repo, "a", [b"layer"])
    manifest = admin.request(
        "GET",
        f"/v2/{repo}/manifests/{digest}",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
    ).content
    tags = ["a", "B", "b", "_x", "Z9", "0", "a-b", "a_b", "a.b", "A"]
    for tag in tags[1:]:
        r = admin.request(
            "PUT",
            f"/v2/{repo}/manifests/{tag}",
            data=manifest,
            headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
        )
        assert r.status_code == 201, r.text
    r = admin.request("GET", f"/v2/{repo}/tags/list")
    assert r.json()["tags"] == sorted(tags)
    # Pagination walks the same order.
    seen, path = [], f"/v2/{repo}/tags/list?n=3"
    while path:
        r = admin.request("GET", path)
        seen += r.json()["tags"]
        link = r.headers.get("Link")
        path = link.split(";")[0].strip("<>") if link else None
    assert seen == sorted(tags)

    names = [f"acme/main/cat/{n}" for n in ("x0", "x_y", "x.y", "x-y", "xa")]
    for name in names:
        admin.push_blob(name, b"x")
    catalog = admin.request("GET", "/v2/_catalog").json()["repositories"]
    assert [n for n in catalog if n.startswith("acme/main/cat/")] == sorted(names)


def _push_together(clients: list[OCIClient], repo: str, tag: str, layers: list[bytes]):
    """Each client pushes its image's blobs, then all PUT the same tag at once."""
    barrier = threading.Barrier(len(clients))
    results: list[tuple[int, str]] = [(0, "")] * len(clients)

    def push(i: int) -> None:
        client, layer = clients[i], layers[i]
        config = json.dumps({"architecture": "amd64", "os": "linux"}).encode()
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": client.push_blob(repo, config),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": client.push_blob(repo, layer),
                    "size": len(layer),
                }
            ],
        }
        barrier.wait(timeout=60)
        r = client.push_manifest(repo, tag, manifest)
        results[i] = (r.status_code, r.headers.get("Docker-Content-Digest", r.text))

    threads = [threading.Thread(target=push, args=(i,)) for i in range(len(clients))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results


def test_concurrent_identical_pushes(server, tmp_path):
    other = replica(server, tmp_path / "second")
    try:
        clients = [
            OCIClient(srv.url, "admin", server.admin_password) for srv in [server, other] * 4
        ]
        layer = os.urandom(MiB)
        results = _push_together(clients, "acme/main/same", "latest", [layer] * len(clients))
        assert {status for status, _ in results} == {201}, results
        assert len({d for _, d in results}) == 1
    finally:
        other.stop()


def test_concurrent_pushes_of_one_tag_end_consistent(server, admin, tmp_path):
    other = replica(server, tmp_path / "second")
    try:
        clients = [
            OCIClient(srv.url, "admin", server.admin_password) for srv in [server, other] * 4
        ]
        layers = [os.urandom(1000) for _ in clients]
        results = _push_together(clients, "acme/main/race", "latest", layers)
        assert {status for status, _ in results} == {201}, results
        pushed = {d for _, d in results}
        assert len(pushed) == len(clients)
        r = admin.request(
            "HEAD",
            "/v2/acme/main/race/manifests/latest",
            headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
        )
        assert r.status_code == 200 and r.headers["Docker-Content-Digest"] in pushed
        assert admin.request("GET", "/v2/acme/main/race/tags/list").json()["tags"] == ["latest"]
        for srv in (server, other):
            c = OCIClient(srv.url, "admin", server.admin_password)
            r = c.request(
                "HEAD",
                "/v2/acme/main/race/manifests/latest",
                headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
            )
            assert r.headers["Docker-Content-Digest"] in pushed
    finally:
        other.stop()


def wait_for_parts(services: Services, prefix: str, count: int) -> None:
    s3 = services.s3_client()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for mpu in services.multipart_uploads(prefix):
            parts = s3.list_parts(
                Bucket=services.s3_bucket, Key=mpu["Key"], UploadId=mpu["UploadId"]
            )
            if len(parts.get("Parts", [])) >= count:
                return
        time.sleep(0.1)
    raise AssertionError(f"no multipart upload under {prefix} reached {count} parts")


def test_chunked_upload_hops_replicas_and_survives_a_killed_one(services, backends, tmp_path):
    """Chunks alternate between two replicas; one dies mid-chunk; the other finishes."""
    first = backends()
    second = replica(first, tmp_path / "second")
    try:
        a = OCIClient(first.url, "admin", first.admin_password)
        b = OCIClient(second.url, "admin", first.admin_password)
        repo = "acme/main/hop"
        data = os.urandom(22 * MiB + 5)
        digest = digest_of(data)
        location = a.request("POST", f"/v2/{repo}/blobs/uploads/").headers["Location"]
        token = a.tokens[f"/v2/{repo}/blobs/uploads/"]

        def patch(client: OCIClient, first_byte: int, last_byte: int) -> requests.Response:
            return client.request(
                "PATCH",
                location,
                data=data[first_byte:last_byte],
                headers={
                    "Content-Type": "application/octet-stream",
                    "Content-Range": f"{first_byte}-{last_byte - 1}",
                },
            )

        for client, (lo, hi) in [
            (a, (0, 3 * MiB)),
            (b, (3 * MiB, 9 * MiB)),
            (a, (9 * MiB, 10 * MiB)),
        ]:
            r = patch(client, lo, hi)
            assert r.status_code == 202, r.text
            assert r.headers["Range"] == f"0-{hi - 1}"

        # The first replica takes a 12 MiB chunk, receives 10 MiB of it, uploads a second
        # part to S3 from it, and dies without a chance to record anything.
        sock = send_partial_patch(
            first.port, location, token, 10 * MiB, data[10 * MiB : 20 * MiB], total=12 * MiB
        )
        upload_id = location.rsplit("/", 1)[1]
        wait_for_parts(services, f"{first.env['CARGOHOLD_S3_PREFIX']}/uploads/{upload_id}/", 2)
        first.kill()
        sock.close()

        r = b.request("GET", location)
        assert r.status_code == 204 and r.headers["Range"] == f"0-{10 * MiB - 1}"
        r = patch(b, 10 * MiB, len(data))
        assert r.status_code == 202, r.text
        r = b.request("PUT", f"{location}?digest={digest}")
        assert r.status_code == 201, r.text
        assert pull(b, repo, digest) == data
    finally:
        second.stop()
        first.stop()
