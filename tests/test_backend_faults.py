"""Backend faults on the production backends: the object store stops in the middle of an upload,
PostgreSQL restarts under a running server.

These stop and restart the shared services (scripts/services.sh reuses their ports), so they
run in one module and leave both running when they end.
"""

from __future__ import annotations

import os
import subprocess
import time

import pytest
import requests

from tests.support.client import OCIClient, digest_of
from tests.support.server import ROOT, Server, make_server
from tests.support.services import Services, require_services, unique_prefix

MiB = 1024 * 1024
SERVICES = ROOT / "scripts" / "services.sh"


def services_cmd(*args: str) -> None:
    subprocess.run([str(SERVICES), *args], check=True, capture_output=True, timeout=180)


@pytest.fixture(scope="module")
def services() -> Services:
    return require_services()


@pytest.fixture(scope="module")
def server(services, tmp_path_factory):
    url, prefix = services.create_database(), unique_prefix()
    srv = make_server(tmp_path_factory.mktemp("faults"), extra_env=services.server_env(url, prefix))
    srv.start()
    yield srv
    srv.stop()
    services_cmd("start")  # whatever happened, leave the services running
    services.drop_database(url)
    services.purge(prefix)


def blob_rows(server: Server, digest: str) -> int:
    return server.sql("SELECT count(*) FROM blobs WHERE digest = ?", digest)[0][0]


def test_object_store_outage_mid_upload_is_retryable(server: Server, services: Services):
    client = OCIClient(server.url, "alice", server.users["alice"])
    repo = "acme/main/faults/app"
    first, second = os.urandom(6 * MiB), os.urandom(3 * MiB)
    digest = digest_of(first + second)

    r = client.request("POST", f"/v2/{repo}/blobs/uploads/")
    assert r.status_code == 202
    location = r.headers["Location"]
    r = client.request(
        "PATCH", location, data=first, headers={"Content-Range": f"0-{len(first) - 1}"}
    )
    assert r.status_code == 202, r.text
    location = r.headers["Location"]

    services_cmd("stop-s3")
    try:
        patch = {"Content-Range": f"{len(first)}-{len(first) + len(second) - 1}"}
        r = client.request("PATCH", location, data=second, headers=patch)
        assert r.status_code == 503, r.text
        assert r.json()["errors"][0]["code"] == "UNAVAILABLE"
        assert r.headers["Retry-After"]
        # A monolithic push fails the same way, and leaves no row behind.
        lone = os.urandom(1024)
        r = client.request("POST", f"/v2/{repo}/blobs/uploads/?digest={digest_of(lone)}", data=lone)
        assert r.status_code == 503
        assert blob_rows(server, digest_of(lone)) == 0
        assert blob_rows(server, digest) == 0
    finally:
        services_cmd("start")

    # The same request, retried once the store is back, goes on from where the upload was.
    deadline = time.monotonic() + 60
    while True:
        r = client.request("PATCH", location, data=second, headers=patch)
        if r.status_code == 202 or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert r.status_code == 202, r.text
    location = r.headers["Location"]
    sep = "&" if "?" in location else "?"
    r = client.request("PUT", f"{location}{sep}digest={digest}")
    assert r.status_code == 201, r.text
    assert blob_rows(server, digest) == 1
    got = client.request("GET", f"/v2/{repo}/blobs/{digest}")
    assert got.status_code == 200 and got.content == first + second


def test_postgres_restart_needs_no_server_restart(server: Server):
    client = OCIClient(server.url, "alice", server.users["alice"])
    repo = "acme/main/faults/restart"
    digest, _ = client.push_image(repo, "v1", [b"before the restart"])
    services_cmd("restart-postgres")
    # Every worker's pooled connections died; each request must still succeed.
    for i in range(6):
        r = requests.get(
            f"{server.url}/v2/{repo}/manifests/v1",
            auth=("alice", server.users["alice"]),
            headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
        )
        assert r.status_code == 200, (i, r.text)
        assert r.headers["Docker-Content-Digest"] == digest
    client.push_image(repo, "v2", [b"after the restart"])
