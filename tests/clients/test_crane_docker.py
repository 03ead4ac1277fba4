"""crane and `docker manifest inspect`: copy, list, digest, manifest, delete."""

from __future__ import annotations

import json

import pytest

from tests.clients.layout import write_oci_layout

pytestmark = pytest.mark.clients


@pytest.fixture(scope="module")
def crane(clients):
    c = clients
    c.run("crane", "auth", "login", c.host, "-u", c.user, "-p", c.password)
    return c


def test_crane_push_copy_ls_digest_manifest_delete(crane, tmp_path):
    c = crane
    digest = write_oci_layout(tmp_path / "layout", {"crane.txt": b"crane"})
    src = f"{c.host}/acme/main/crane/img"
    pushed = c.crane("push", str(tmp_path / "layout"), f"{src}:v1").stdout.strip()
    assert pushed.endswith(digest)

    c.crane("tag", f"{src}:v1", "v2")
    assert c.crane("ls", src).stdout.split() == ["v1", "v2"]
    assert c.crane("digest", f"{src}:v2").stdout.strip() == digest
    manifest = json.loads(c.crane("manifest", f"{src}:v1").stdout)
    assert manifest["layers"][0]["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"

    dest = f"{c.host}/acme/second/crane/img:copied"
    c.crane("copy", f"{src}:v1", dest)
    assert c.crane("digest", dest).stdout.strip() == digest

    c.crane("delete", f"{src}@{digest}")
    assert c.crane("ls", src).stdout.split() == []
    assert c.crane("digest", f"{src}:v1", check=False).returncode != 0
    # The copy in the other repository is untouched.
    assert c.crane("digest", dest).stdout.strip() == digest


def test_docker_manifest_inspect(crane, tmp_path):
    c = crane
    digest = write_oci_layout(tmp_path / "layout", {"docker.txt": b"docker"})
    ref = f"{c.host}/acme/main/docker/img:v1"
    c.crane("push", str(tmp_path / "layout"), ref)
    out = c.run("docker", "manifest", "inspect", "--insecure", ref).stdout
    manifest = json.loads(out)
    assert manifest["schemaVersion"] == 2
    assert manifest["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json"
    verbose = json.loads(c.run("docker", "manifest", "inspect", "--insecure", "-v", ref).stdout)
    assert verbose["Descriptor"]["digest"] == digest
