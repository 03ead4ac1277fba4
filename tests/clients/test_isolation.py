"""Tenant boundaries as a real client sees them."""

from __future__ import annotations

import pytest

from tests.clients.layout import write_oci_layout

pytestmark = pytest.mark.clients


@pytest.fixture(scope="module")
def seeded(clients_as, tmp_path_factory):
    """mallory (admin of `other`) pushes one private and one public image."""
    m = clients_as("mallory")
    m.run("crane", "auth", "login", m.host, "-u", "mallory", "-p", m.password)
    layout = tmp_path_factory.mktemp("mallory-layout")
    write_oci_layout(layout, {"secret.txt": b"mallory's"})
    for reg in ("private", "public"):
        m.crane("push", str(layout), f"{m.host}/other/{reg}/app:v1")
    return m


def test_other_tenants_private_repository_is_refused(seeded, clients, tmp_path):
    c = clients
    c.run("crane", "auth", "login", c.host, "-u", c.user, "-p", c.password)
    pull = c.crane("manifest", f"{c.host}/other/private/app:v1", check=False)
    assert pull.returncode != 0
    assert "UNAUTHORIZED" in pull.stderr or "DENIED" in pull.stderr
    tags = c.crane("ls", f"{c.host}/other/private/app", check=False)
    assert tags.returncode != 0

    write_oci_layout(tmp_path / "l", {"x": b"alice"})
    push = c.crane("push", str(tmp_path / "l"), f"{c.host}/other/private/app:alice", check=False)
    assert push.returncode != 0
    # The catalog shows nothing of the other organisation.
    catalog = c.crane("catalog", c.host).stdout.split()
    assert not [name for name in catalog if name.startswith("other/private")]


def test_other_tenants_public_registry_is_pull_only(seeded, clients, tmp_path):
    c = clients
    c.podman("login", "--tls-verify=false", "-u", c.user, "-p", c.password, c.host)
    c.podman("pull", "--tls-verify=false", f"{c.host}/other/public/app:v1")
    write_oci_layout(tmp_path / "l", {"x": b"alice"})
    push = c.skopeo(
        "copy",
        "--dest-tls-verify=false",
        f"oci:{tmp_path / 'l'}:latest",
        f"docker://{c.host}/other/public/app:alice",
        check=False,
    )
    # Refused for want of the right, not failed for any other reason.
    assert push.returncode != 0 and "denied" in push.stderr.lower(), push.stderr
    assert c.crane("ls", f"{c.host}/other/public/app").stdout.split() == ["v1"]
