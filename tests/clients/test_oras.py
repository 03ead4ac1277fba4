"""oras: artifacts with any media type, referrers (attach/discover), pull, and copy with -r."""

from __future__ import annotations

import hashlib
import json

import pytest

pytestmark = pytest.mark.clients
SBOM = "application/vnd.example.sbom.v1+json"
SIG = "application/vnd.example.signature.v1"


@pytest.fixture(scope="module")
def oras(clients):
    c = clients
    c.oras("login", "-u", c.user, "-p", c.password, c.host)
    return c


def test_oras_login_refuses_a_wrong_password(clients_as):
    c = clients_as("alice")
    proc = c.oras("login", "-u", "alice", "-p", "wrong-password", c.host, check=False)
    assert proc.returncode != 0


def test_oras_push_attach_discover_pull_copy(oras, tmp_path):
    c = oras
    ref = f"{c.host}/acme/main/oras/report"
    work = tmp_path / "in"
    work.mkdir()
    (work / "report.json").write_text('{"findings": 0}')
    blob = (work / "report.json").read_bytes()

    pushed = c.oras(
        "push",
        f"{ref}:v1",
        "--artifact-type",
        "application/vnd.example.report",
        "--annotation",
        "org.example.owner=alice",
        "report.json:application/json",
        "--format",
        "json",
        cwd=work,
    )
    subject = json.loads(pushed.stdout)["digest"]
    manifest = json.loads(c.oras("manifest", "fetch", f"{ref}:v1").stdout)
    assert manifest["artifactType"] == "application/vnd.example.report"
    assert manifest["annotations"]["org.example.owner"] == "alice"

    # Two referrers of different types; discover filters by type.
    (work / "sbom.json").write_text('{"packages": []}')
    (work / "sig.bin").write_bytes(b"signature")
    c.oras(
        "attach",
        f"{ref}:v1",
        "--artifact-type",
        SBOM,
        "--annotation",
        "org.example.kind=sbom",
        "sbom.json:application/json",
        cwd=work,
    )
    c.oras("attach", f"{ref}:v1", "--artifact-type", SIG, "sig.bin", cwd=work)

    every = json.loads(c.oras("discover", f"{ref}:v1", "--format", "json").stdout)
    assert sorted(r["artifactType"] for r in every["referrers"]) == sorted([SBOM, SIG])
    only = json.loads(
        c.oras("discover", f"{ref}:v1", "--artifact-type", SBOM, "--format", "json").stdout
    )
    assert [r["artifactType"] for r in only["referrers"]] == [SBOM]
    assert only["referrers"][0]["annotations"]["org.example.kind"] == "sbom"

    out = tmp_path / "out"
    c.oras("pull", f"{ref}@{subject}", "-o", str(out))
    assert (
        hashlib.sha256((out / "report.json").read_bytes()).digest() == hashlib.sha256(blob).digest()
    )

    # Copy with its referrers into another registry of the organisation.
    dest = f"{c.host}/acme/second/oras/report:v1"
    c.oras("cp", "-r", f"{ref}:v1", dest)
    copied = json.loads(c.oras("discover", dest, "--format", "json").stdout)
    assert sorted(r["artifactType"] for r in copied["referrers"]) == sorted([SBOM, SIG])
