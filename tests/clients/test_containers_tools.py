"""podman, buildah and skopeo against a real Cargohold: login, build, push, pull, multi-arch."""

from __future__ import annotations

import json

import pytest

from tests.clients.layout import write_oci_layout

pytestmark = pytest.mark.clients
TLS = "--tls-verify=false"


@pytest.fixture(scope="module")
def logged_in(clients):
    clients.podman("login", TLS, "-u", clients.user, "-p", clients.password, clients.host)
    return clients


def test_podman_login_refuses_a_wrong_password(clients_as):
    c = clients_as("alice")
    proc = c.podman("login", TLS, "-u", "alice", "-p", "not-the-password", c.host, check=False)
    assert proc.returncode != 0
    assert "invalid username/password" in proc.stderr


def test_podman_build_push_pull_roundtrip(logged_in, tmp_path):
    c = logged_in
    ref = f"{c.host}/acme/main/podman/hello:1.0"
    (tmp_path / "hello.txt").write_text("hello from cargohold\n")
    (tmp_path / "Containerfile").write_text(
        "FROM scratch\nCOPY hello.txt /hello.txt\nLABEL org.example.test=podman\n"
    )
    c.podman("build", "-t", ref, str(tmp_path))
    c.podman("push", TLS, ref)
    pushed = json.loads(c.skopeo("inspect", TLS, f"docker://{ref}").stdout)

    c.podman("rmi", "-f", ref)
    c.podman("pull", TLS, ref)
    local = json.loads(c.podman("image", "inspect", ref).stdout)[0]
    assert local["Labels"]["org.example.test"] == "podman"
    assert pushed["Digest"] in local["RepoDigests"][0]

    # The file inside the pulled layer is the one that was built in.
    c.podman("create", "--name", "hello-check", ref, "/none")
    try:
        c.podman("cp", "hello-check:/hello.txt", str(tmp_path / "out.txt"))
    finally:
        c.podman("rm", "-f", "hello-check")
    assert (tmp_path / "out.txt").read_text() == "hello from cargohold\n"


@pytest.mark.parametrize("fmt", ["oci", "v2s2"])
def test_podman_pushes_oci_and_docker_formats(logged_in, tmp_path, fmt):
    c = logged_in
    ref = f"{c.host}/acme/main/podman/format:{fmt}"
    (tmp_path / "f.txt").write_text(fmt)
    (tmp_path / "Containerfile").write_text("FROM scratch\nCOPY f.txt /f.txt\n")
    c.podman("build", "--format", "oci" if fmt == "oci" else "docker", "-t", ref, str(tmp_path))
    c.podman("push", TLS, "--format", fmt, ref)
    raw = json.loads(c.skopeo("inspect", TLS, "--raw", f"docker://{ref}").stdout)
    expected = {
        "oci": "application/vnd.oci.image.manifest.v1+json",
        "v2s2": "application/vnd.docker.distribution.manifest.v2+json",
    }[fmt]
    assert raw["mediaType"] == expected


def test_podman_multi_arch_manifest_push_all(logged_in, tmp_path):
    c = logged_in
    ref = f"{c.host}/acme/main/podman/multi:1"
    (tmp_path / "f.txt").write_text("multi")
    (tmp_path / "Containerfile").write_text("FROM scratch\nCOPY f.txt /f.txt\n")
    # One build per platform: podman's multi-platform build reuses one cached scratch image.
    c.podman("manifest", "create", "multi-list")
    for arch in ("amd64", "arm64"):
        image = f"localhost/multi-{arch}"
        c.podman("build", "--no-cache", "--platform", f"linux/{arch}", "-t", image, str(tmp_path))
        c.podman("manifest", "add", "multi-list", f"containers-storage:{image}")
    c.podman("manifest", "push", TLS, "--all", "multi-list", f"docker://{ref}")

    index = json.loads(c.skopeo("inspect", TLS, "--raw", f"docker://{ref}").stdout)
    arches = sorted(m["platform"]["architecture"] for m in index["manifests"])
    assert arches == ["amd64", "arm64"]
    arm = json.loads(c.skopeo("inspect", TLS, "--override-arch", "arm64", f"docker://{ref}").stdout)
    assert arm["Architecture"] == "arm64"
    c.podman("pull", TLS, "--platform", "linux/arm64", ref)


def test_buildah_from_scratch_commit_push(logged_in, tmp_path):
    c = logged_in
    ref = f"{c.host}/acme/main/buildah/app:1"
    (tmp_path / "app.txt").write_text("built by buildah\n")
    ctr = c.buildah("from", "scratch").stdout.strip()
    try:
        c.buildah("copy", ctr, str(tmp_path / "app.txt"), "/app.txt")
        c.buildah("config", "--label", "org.example.test=buildah", ctr)
        c.buildah("commit", ctr, "buildah-app")
    finally:
        c.buildah("rm", ctr)
    c.buildah("push", TLS, "buildah-app", f"docker://{ref}")
    info = json.loads(c.skopeo("inspect", TLS, f"docker://{ref}").stdout)
    assert info["Labels"]["org.example.test"] == "buildah"
    c.buildah("rmi", "-f", "buildah-app")
    c.buildah("pull", TLS, ref)


def test_skopeo_copy_inspect_list_delete(logged_in, tmp_path):
    c = logged_in
    layout = tmp_path / "layout"
    digest = write_oci_layout(layout, {"etc/skopeo.txt": b"skopeo"}, tag="v1")
    ref = f"{c.host}/acme/main/skopeo/img"
    c.skopeo("copy", "--dest-tls-verify=false", f"oci:{layout}:v1", f"docker://{ref}:v1")
    c.skopeo("copy", "--dest-tls-verify=false", f"oci:{layout}:v1", f"docker://{ref}:v2")

    info = json.loads(c.skopeo("inspect", TLS, f"docker://{ref}:v1").stdout)
    assert info["Digest"] == digest
    assert info["Labels"]["org.example.test"] == "cargohold"
    tags = json.loads(c.skopeo("list-tags", TLS, f"docker://{ref}").stdout)["Tags"]
    assert tags == ["v1", "v2"]

    # A copy to another registry of the same organisation mounts blobs across repositories.
    other = f"{c.host}/acme/second/skopeo/img:v1"
    c.skopeo(
        "copy",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        f"docker://{ref}:v1",
        f"docker://{other}",
    )
    assert json.loads(c.skopeo("inspect", TLS, f"docker://{other}").stdout)["Digest"] == digest

    # Back to a layout: identical bytes.
    out = tmp_path / "out"
    c.skopeo("copy", "--src-tls-verify=false", f"docker://{ref}:v1", f"oci:{out}:v1")
    assert (out / "blobs/sha256" / digest.split(":")[1]).exists()

    c.skopeo("delete", TLS, f"docker://{ref}@{digest}")
    gone = c.skopeo("inspect", TLS, f"docker://{ref}:v1", check=False)
    assert gone.returncode != 0
    assert "manifest unknown" in gone.stderr.lower()
