"""cosign signs, real clients pull: keys made by `cosign generate-key-pair`, images signed in
both of cosign's forms (the `sha256-<hex>.sig` tag with `--new-bundle-format=false`, a sigstore
bundle referrer with `=true`), no transparency log. With the registry's policy on, podman,
skopeo and crane pull the signed images and are refused the unsigned and the wrongly signed
ones; cosign still reads the signatures; rotating the key moves what is admitted."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import requests

from tests.clients.layout import write_oci_layout
from tests.conftest import require_tool

pytestmark = pytest.mark.clients
TLS = "--tls-verify=false"
REGISTRY = "cosigned"
REPO = f"acme/{REGISTRY}/app"
NO_TLOG = ["--tlog-upload=false", "--use-signing-config=false"]
INSECURE = ["--allow-http-registry", "--allow-insecure-registry"]


def cosign(c, *args: str, cwd: Path | None = None, check: bool = True):
    """cosign as the client's user: its registry credentials from the docker config file."""
    proc = subprocess.run(
        [require_tool("cosign"), *args],
        env={**c.env, "COSIGN_PASSWORD": "", "COSIGN_YES": "true"},
        cwd=cwd or c.home,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"cosign {' '.join(args)} exited {proc.returncode}\n{proc.stderr}")
    return proc


def key_pair(c, where: Path) -> Path:
    where.mkdir(parents=True, exist_ok=True)
    cosign(c, "generate-key-pair", cwd=where)
    return where


def sign(c, keys: Path, ref: str, bundle: bool) -> None:
    cosign(
        c,
        "sign",
        "--key",
        str(keys / "cosign.key"),
        *NO_TLOG,
        f"--new-bundle-format={'true' if bundle else 'false'}",
        *INSECURE,
        "-y",
        ref,
    )


class World:
    def __init__(self, server, writer, viewer, tmp: Path):
        self.server, self.writer, self.viewer, self.tmp = server, writer, viewer, tmp
        self.api = f"{server.url}/api/v1/orgs/acme/registries/{REGISTRY}"
        self.admin = ("admin", server.users["admin"])
        self.digests: dict[str, str] = {}

    def push(self, name: str) -> str:
        layout = self.tmp / f"layout-{name}"
        digest = write_oci_layout(layout, {f"{name}.txt": name.encode()})
        ref = f"{self.server.host}/{REPO}:{name}"
        self.writer.crane("push", str(layout), ref)
        self.digests[name] = digest
        return f"{self.server.host}/{REPO}@{digest}"

    def status(self, name: str) -> dict:
        r = requests.get(
            f"{self.api}/repositories/app/manifests/{name}/signatures", auth=self.admin, timeout=30
        )
        assert r.status_code == 200, r.text
        return r.json()

    def add_key(self, name: str, keys: Path) -> int:
        pem = (keys / "cosign.pub").read_text()
        r = requests.post(
            f"{self.api}/signing-keys", json={"name": name, "pem": pem}, auth=self.admin, timeout=30
        )
        assert r.status_code == 201, r.text
        return r.json()["id"]

    def policy(self, on: bool) -> None:
        r = requests.put(
            f"{self.api}/signature-policy",
            json={"require_signature": on},
            auth=self.admin,
            timeout=30,
        )
        assert r.status_code == 200, r.text

    def ref(self, name: str) -> str:
        return f"{self.server.host}/{REPO}:{name}"


@pytest.fixture(scope="module")
def world(server, clients_as, tmp_path_factory):
    r = requests.post(
        f"{server.url}/api/v1/orgs/acme/registries",
        json={"name": REGISTRY},
        auth=("admin", server.users["admin"]),
        timeout=30,
    )
    assert r.status_code == 201, r.text
    writer, viewer = clients_as("alice"), clients_as("victor")
    viewer.podman("login", TLS, "-u", viewer.user, "-p", viewer.password, viewer.host)
    w = World(server, writer, viewer, tmp_path_factory.mktemp("cosign"))
    yield w
    w.policy(False)


def refused(proc) -> None:
    assert proc.returncode != 0, proc.stdout
    text = proc.stderr.lower()
    assert "denied" in text or "403" in text, proc.stderr


def test_signed_images_pull_and_unsigned_are_refused(world):
    w = world
    release = key_pair(w.writer, w.tmp / "release")
    stranger = key_pair(w.writer, w.tmp / "stranger")
    sign(w.writer, release, w.push("tag-scheme"), bundle=False)
    sign(w.writer, release, w.push("bundle"), bundle=True)
    sign(w.writer, stranger, w.push("wrong"), bundle=False)
    w.push("unsigned")

    w.add_key("release", release)
    tag_scheme = w.status("tag-scheme")
    assert tag_scheme["status"] == "verified", tag_scheme
    assert tag_scheme["signatures"][0]["format"] == "cosign"
    bundle = w.status("bundle")
    assert bundle["status"] == "verified", bundle
    assert bundle["signatures"][0]["format"] == "sigstore-bundle"
    assert bundle["signatures"][0]["detail"] == "DSSE envelope signed"
    assert w.status("wrong")["status"] == "invalid"
    assert w.status("unsigned")["status"] == "unsigned"

    w.policy(True)
    v = w.viewer
    for name in ("tag-scheme", "bundle"):
        v.podman("pull", TLS, w.ref(name))
        v.skopeo("inspect", TLS, f"docker://{w.ref(name)}")
        v.crane("manifest", w.ref(name))
        v.crane("pull", w.ref(name), str(w.tmp / f"{name}.tar"))
    for name in ("unsigned", "wrong"):
        proc = v.podman("pull", TLS, w.ref(name), check=False)
        refused(proc)
        assert "pull requires a valid signature" in proc.stderr, proc.stderr
        refused(v.skopeo("inspect", TLS, f"docker://{w.ref(name)}", check=False))
        digest_ref = f"{w.server.host}/{REPO}@{w.digests[name]}"
        refused(v.skopeo("copy", f"docker://{digest_ref}", f"oci:{w.tmp / name}", TLS, check=False))
        refused(v.crane("manifest", w.ref(name), check=False))
        refused(v.crane("pull", digest_ref, str(w.tmp / f"{name}.tar"), check=False))

    # Reading signatures still works under the policy: cosign verifies as the viewer.
    out = cosign(
        v,
        "verify",
        "--key",
        str(release / "cosign.pub"),
        "--insecure-ignore-tlog=true",
        "--new-bundle-format=false",
        *INSECURE,
        w.ref("tag-scheme"),
    )
    assert w.digests["tag-scheme"] in out.stdout


def test_rotation_admits_the_new_key_and_drops_the_old(world):
    w = world
    w.policy(True)
    successor = key_pair(w.writer, w.tmp / "successor")
    # A writer fetches the refused manifest to sign it (writers are exempt by default).
    sign(w.writer, successor, f"{w.server.host}/{REPO}@{w.digests['unsigned']}", bundle=True)
    refused(w.viewer.podman("pull", TLS, w.ref("unsigned"), check=False))
    new_id = w.add_key("successor", successor)
    w.viewer.podman("pull", TLS, w.ref("unsigned"))
    keys = requests.get(f"{w.api}/signing-keys", auth=w.admin, timeout=30).json()["keys"]
    (old,) = [k for k in keys if k["name"] == "release"]
    r = requests.post(f"{w.api}/signing-keys/{old['id']}/retire", auth=w.admin, timeout=30)
    assert r.status_code == 200, r.text
    refused(w.viewer.crane("manifest", w.ref("tag-scheme"), check=False))
    refused(w.viewer.podman("pull", TLS, w.ref("bundle"), check=False))
    w.viewer.crane("manifest", w.ref("unsigned"))
    assert w.status("unsigned")["signatures"][0]["key"] == "successor"
    assert new_id
