"""helm: registry login, push, pull and show of a chart stored as an OCI artifact."""

from __future__ import annotations

import json
import tarfile

import pytest

pytestmark = pytest.mark.clients


@pytest.fixture(scope="module")
def helm(clients):
    c = clients
    c.helm("registry", "login", "--insecure", "-u", c.user, "-p", c.password, c.host)
    return c


def test_helm_login_refuses_a_wrong_password(clients_as):
    c = clients_as("alice")
    proc = c.helm(
        "registry",
        "login",
        "--insecure",
        "-u",
        "alice",
        "-p",
        "wrong-password",
        c.host,
        check=False,
    )
    assert proc.returncode != 0


def test_helm_package_push_pull_show(helm, tmp_path):
    c = helm
    c.helm("create", "demo", cwd=tmp_path)
    c.helm("package", "demo", "--version", "0.3.1", cwd=tmp_path)
    chart = tmp_path / "demo-0.3.1.tgz"
    pushed = c.helm("push", str(chart), f"oci://{c.host}/acme/main/charts", "--plain-http")
    assert "Digest: sha256:" in pushed.stdout + pushed.stderr

    url = f"oci://{c.host}/acme/main/charts/demo"
    shown = c.helm("show", "chart", url, "--version", "0.3.1", "--plain-http").stdout
    assert "name: demo" in shown and "version: 0.3.1" in shown

    dest = tmp_path / "pulled"
    dest.mkdir()
    c.helm("pull", url, "--version", "0.3.1", "--plain-http", "-d", str(dest))
    with tarfile.open(dest / "demo-0.3.1.tgz") as tar:
        assert "demo/Chart.yaml" in tar.getnames()

    # The manifest is an ordinary OCI artifact: helm's config media type is preserved.
    raw = c.run(
        "skopeo",
        "inspect",
        "--tls-verify=false",
        "--raw",
        f"docker://{c.host}/acme/main/charts/demo:0.3.1",
    ).stdout
    manifest = json.loads(raw)
    assert manifest["config"]["mediaType"] == "application/vnd.cncf.helm.config.v1+json"


def test_helm_push_to_an_unknown_registry_is_refused(helm, tmp_path):
    c = helm
    c.helm("create", "stray", cwd=tmp_path)
    c.helm("package", "stray", cwd=tmp_path)
    proc = c.helm(
        "push",
        str(tmp_path / "stray-0.1.0.tgz"),
        f"oci://{c.host}/acme/nope/charts",
        "--plain-http",
        check=False,
    )
    assert proc.returncode != 0
