"""Signatures over HTTP: keys through the management API, cosign's tag scheme, sigstore bundles
and Notary Project JWS signatures verified against them, and the "pull requires a valid
signature" policy on manifest pulls (by tag, by digest, an index's child), with what it lets
through (signatures themselves, referrers, blobs, writers) and rotation of keys.

The signatures here are made by the tests (tests/support/signing.py, tests/support/notary.py);
tests/clients/test_signatures_cosign.py makes them with cosign and pulls with real clients."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from tests.support import notary
from tests.support.client import OCIClient
from tests.support.server import running_server
from tests.support.signing import (
    bundle_sign,
    cert_pem,
    cosign_sign,
    ec_key,
    make_ca,
    make_leaf,
    public_pem,
)

API = "/api/v1/orgs/acme/registries/{registry}"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    with running_server(tmp_path_factory.mktemp("signatures")) as server:
        yield server


class World:
    def __init__(self, srv, registry: str):
        self.srv = srv
        self.registry = registry
        self.api = srv.url + API.format(registry=registry)
        self.admin = OCIClient(srv.url, "admin", srv.users["admin"])
        self.writer = OCIClient(srv.url, "alice", srv.users["alice"])
        self.viewer = OCIClient(srv.url, "victor", srv.users["victor"])

    def auth(self, user: str = "admin"):
        return (user, self.srv.users[user])

    def add_key(self, name: str, pem: str, expect: int = 201) -> dict:
        r = requests.post(
            f"{self.api}/signing-keys", json={"name": name, "pem": pem}, auth=self.auth()
        )
        assert r.status_code == expect, r.text
        return r.json()

    def policy(self, on: bool, expect: int = 200, **extra) -> dict:
        r = requests.put(
            f"{self.api}/signature-policy",
            json={"require_signature": on, **extra},
            auth=self.auth(),
        )
        assert r.status_code == expect, r.text
        return r.json()

    def key_rows(self) -> list[dict]:
        return requests.get(f"{self.api}/signing-keys", auth=self.auth()).json()["keys"]

    def policy_now(self) -> dict:
        return requests.get(f"{self.api}/signature-policy", auth=self.auth()).json()

    def status(self, repo: str, reference: str, user: str = "victor") -> dict:
        path = repo.split("/", 2)[2]
        r = requests.get(
            f"{self.api}/repositories/{path}/manifests/{reference}/signatures", auth=self.auth(user)
        )
        assert r.status_code == 200, r.text
        return r.json()

    def image(self, repo: str, tag: str, content: bytes) -> dict:
        digest, manifest = self.admin.push_image(repo, tag, [content])
        body = json.dumps(manifest).encode()
        return {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(body)}


def pull(c: OCIClient, repo: str, ref: str, method: str = "GET") -> requests.Response:
    return c.request(method, f"/v2/{repo}/manifests/{ref}", headers={"Accept": OCI_MANIFEST})


def denied(r: requests.Response) -> str:
    assert r.status_code == 403, r.text
    error = r.json()["errors"][0]
    assert error["code"] == "DENIED"
    assert "pull requires a valid signature" in error["detail"]
    # Clients print the message alone, so it names the policy too.
    assert error["message"] == error["detail"]
    return error["detail"]


# ---- keys ------------------------------------------------------------------------------------


def test_keys_are_registered_listed_retired_and_removed(srv):
    w = World(srv, "second")
    key = ec_key()
    made = w.add_key("release", public_pem(key))
    assert made["kind"] == "public-key" and made["algorithm"] == "ecdsa-p256" and made["active"]
    assert made["fingerprint"].startswith("sha256:")
    ca, _ = make_ca()
    cert = w.add_key("release-ca", cert_pem(ca))
    assert cert["kind"] == "certificate"
    w.add_key("ed", public_pem(ed25519.Ed25519PrivateKey.generate()))
    w.add_key("rsa", public_pem(rsa.generate_private_key(public_exponent=65537, key_size=2048)))
    w.add_key("p384", public_pem(ec_key(ec.SECP384R1())))

    listed = requests.get(f"{w.api}/signing-keys", auth=w.auth("victor")).json()["keys"]
    assert [k["name"] for k in listed] == ["release", "release-ca", "ed", "rsa", "p384"]
    version = requests.get(f"{w.api}/signature-policy", auth=w.auth()).json()["key_version"]

    r = requests.post(f"{w.api}/signing-keys/{made['id']}/retire", auth=w.auth())
    assert r.status_code == 200 and r.json()["active"] is False and r.json()["retired_at"]
    after = requests.get(f"{w.api}/signature-policy", auth=w.auth()).json()
    assert after["key_version"] == version + 1 and after["active_keys"] == 4
    assert requests.delete(f"{w.api}/signing-keys/{cert['id']}", auth=w.auth()).status_code == 204
    assert requests.delete(f"{w.api}/signing-keys/{cert['id']}", auth=w.auth()).status_code == 404
    names = [k["name"] for k in requests.get(f"{w.api}/signing-keys", auth=w.auth()).json()["keys"]]
    assert names == ["release", "ed", "rsa", "p384"]
    # Viewers and writers read the keys but do not change them.
    r = requests.post(
        f"{w.api}/signing-keys", json={"name": "x", "pem": public_pem(key)}, auth=w.auth("alice")
    )
    assert r.status_code == 403


def test_bad_keys_are_refused_with_a_reason(srv):
    w = World(srv, "second")
    key = ec_key()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    cases = [
        ({"name": "p", "pem": private}, 400, "private key"),
        ({"name": "g", "pem": "not a key"}, 400, "PEM"),
        ({"name": "two", "pem": public_pem(key) + public_pem(key)}, 400, "exactly one"),
        ({"name": "weak", "pem": public_pem(weak)}, 400, "too weak"),
        ({"name": "", "pem": public_pem(key)}, 400, "name"),
        ({"name": "a b", "pem": public_pem(key)}, 400, "name"),
        ({"name": "big", "pem": "x" * 20000}, 400, "over"),
        (
            {"name": "broken", "pem": "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"},
            400,
            "cannot be read",
        ),
        ({"pem": public_pem(key)}, 400, "name"),
        ({"name": 5, "pem": public_pem(key)}, 400, "name"),
    ]
    for body, status, words in cases:
        r = requests.post(f"{w.api}/signing-keys", json=body, auth=w.auth())
        assert r.status_code == status, (body, r.text)
        assert words in r.json()["errors"][0]["message"], r.text
    w.add_key("dup", public_pem(key))
    w.add_key("dup", public_pem(key), expect=409)
    r = requests.put(f"{w.api}/signature-policy", json={"require_signature": "yes"}, auth=w.auth())
    assert r.status_code == 400


def test_the_policy_needs_an_active_key(srv):
    w = World(srv, "public")
    w.policy(True, expect=409)
    only = w.add_key("only", public_pem(ec_key()))
    assert w.policy(True)["require_signature"] is True
    # The last active key cannot go while the policy needs one.
    r = requests.post(f"{w.api}/signing-keys/{only['id']}/retire", auth=w.auth())
    assert r.status_code == 409 and "last active key" in r.text
    w.policy(False)
    assert requests.delete(f"{w.api}/signing-keys/{only['id']}", auth=w.auth()).status_code == 204


# ---- cosign's tag scheme and the policy --------------------------------------------------------


def test_cosign_signatures_and_the_pull_policy(srv):
    w = World(srv, "main")
    repo = "acme/main/signed/app"
    key, stranger = ec_key(), ec_key()
    w.add_key("release", public_pem(key))
    signed = w.image(repo, "signed", b"signed image")
    unsigned = w.image(repo, "unsigned", b"unsigned image")
    wrong = w.image(repo, "wrong", b"wrongly signed image")
    replayed = w.image(repo, "replayed", b"signature of another image")
    sig = cosign_sign(w.admin, repo, signed["digest"], key)
    cosign_sign(w.admin, repo, wrong["digest"], stranger)
    # A valid signature, but over another manifest, placed under this one's tag.
    cosign_sign(w.admin, repo, replayed["digest"], key, signed_digest=signed["digest"])

    st = w.status(repo, "signed")
    assert st["status"] == "verified" and st["digest"] == signed["digest"]
    assert st["signatures"][0]["format"] == "cosign" and st["signatures"][0]["key"] == "release"
    assert w.status(repo, "unsigned")["status"] == "unsigned"
    st = w.status(repo, "wrong")
    assert st["status"] == "invalid" and "none of the registry's active keys" in str(st)
    st = w.status(repo, "replayed")
    assert st["status"] == "invalid" and signed["digest"] in str(st)

    # Policy off: everything pulls.
    assert pull(w.viewer, repo, "unsigned").status_code == 200
    w.policy(True)
    for ref in ("signed", signed["digest"]):
        for method in ("GET", "HEAD"):
            assert pull(w.viewer, repo, ref, method).status_code == 200
    detail = denied(pull(w.viewer, repo, "unsigned"))
    assert "acme/main" in detail and unsigned["digest"] in detail and "no signature" in detail
    denied(pull(w.viewer, repo, unsigned["digest"]))
    assert pull(w.viewer, repo, unsigned["digest"], "HEAD").status_code == 403
    assert "none of its signatures" in denied(pull(w.viewer, repo, "wrong"))
    denied(pull(w.viewer, repo, "replayed"))
    # Anonymous pulls of a public registry are refused alike (see test_the_policy_needs...).

    # What the policy lets through: the signature itself, tags, referrers, blobs.
    tag = signed["digest"].replace(":", "-") + ".sig"
    assert pull(w.viewer, repo, tag).status_code == 200
    assert pull(w.viewer, repo, sig).status_code == 200
    assert w.viewer.request("GET", f"/v2/{repo}/tags/list").status_code == 200
    r = w.viewer.request("GET", f"/v2/{repo}/referrers/{unsigned['digest']}")
    assert r.status_code == 200
    layer = json.loads(
        w.admin.request(
            "GET", f"/v2/{repo}/manifests/unsigned", headers={"Accept": OCI_MANIFEST}
        ).content
    )["layers"][0]["digest"]
    assert w.viewer.request("GET", f"/v2/{repo}/blobs/{layer}").content == b"unsigned image"
    # Writers fetch what they are about to sign, unless the policy says otherwise.
    assert pull(w.writer, repo, "unsigned").status_code == 200
    assert w.policy(True, exempt_writers=False)["exempt_writers"] is False
    denied(pull(w.writer, repo, "unsigned"))
    denied(pull(w.admin, repo, "unsigned"))
    assert pull(w.writer, repo, "signed").status_code == 200
    w.policy(True, exempt_writers=True)

    # Signing the refused manifest admits it at once (the cached verdict is not reused) ...
    unsigned_sig = cosign_sign(w.admin, repo, unsigned["digest"], key)
    assert pull(w.viewer, repo, "unsigned").status_code == 200
    (cached,) = srv.sql(
        "SELECT c.status FROM signature_checks c JOIN manifests m ON m.id = c.manifest_id "
        "WHERE m.digest = ?",
        unsigned["digest"],
    )
    assert cached[0] == "verified"
    # ... and deleting its signature refuses it again.
    assert w.admin.request("DELETE", f"/v2/{repo}/manifests/{unsigned_sig}").status_code == 202
    denied(pull(w.viewer, repo, "unsigned"))
    cosign_sign(w.admin, repo, unsigned["digest"], key)
    assert pull(w.viewer, repo, "unsigned").status_code == 200
    w.policy(False)
    assert pull(w.viewer, repo, "wrong").status_code == 200


def test_rotation_new_key_added_old_retired(srv):
    w = World(srv, "main")
    repo = "acme/main/rotate/app"
    old, new = ec_key(), ec_key()
    old_row = w.add_key("old-2025", public_pem(old))
    before = w.image(repo, "before", b"signed with the old key")
    after = w.image(repo, "after", b"signed with the new key")
    cosign_sign(w.admin, repo, before["digest"], old)
    w.policy(True)
    assert pull(w.viewer, repo, "before").status_code == 200
    denied(pull(w.viewer, repo, "after"))
    cosign_sign(w.admin, repo, after["digest"], new)
    denied(pull(w.viewer, repo, "after"))  # the new key is not registered yet
    w.add_key("new-2026", public_pem(new))
    assert pull(w.viewer, repo, "after").status_code == 200
    assert pull(w.viewer, repo, "before").status_code == 200  # both keys count during rotation
    version = w.status(repo, "before")["key_version"]
    r = requests.post(f"{w.api}/signing-keys/{old_row['id']}/retire", auth=w.auth())
    assert r.status_code == 200
    st = w.status(repo, "before")
    assert st["status"] == "invalid" and st["key_version"] == version + 1
    denied(pull(w.viewer, repo, "before"))
    assert pull(w.viewer, repo, "after").status_code == 200
    w.policy(False)


def test_cosign_signatures_with_a_certificate_lead_to_a_registered_ca(srv):
    w = World(srv, "second")
    repo = "acme/second/certified/app"
    ca, ca_key = make_ca("Release CA")
    leaf, leaf_key = make_leaf(ca, ca_key, cn="release signer")
    rogue_ca, rogue_key = make_ca("Release CA")  # the same name, another key
    rogue_leaf, rogue_leaf_key = make_leaf(rogue_ca, rogue_key, cn="release signer")
    w.add_key("release-ca-2026", cert_pem(ca))
    good = w.image(repo, "good", b"certified")
    rogue = w.image(repo, "rogue", b"rogue")
    cosign_sign(w.admin, repo, good["digest"], leaf_key, certificate=cert_pem(leaf))
    cosign_sign(w.admin, repo, rogue["digest"], rogue_leaf_key, certificate=cert_pem(rogue_leaf))
    st = w.status(repo, "good")
    assert st["status"] == "verified" and st["signatures"][0]["key"] == "release-ca-2026"
    st = w.status(repo, "rogue")
    assert st["status"] == "invalid" and "no registered certificate" in str(st), st


def test_an_index_child_follows_a_signed_index(srv):
    w = World(srv, "main")
    repo = "acme/main/multi/app"
    key = ec_key()
    w.add_key("multi", public_pem(key))
    amd = w.image(repo, "amd", b"amd64 layer")
    arm = w.image(repo, "arm", b"arm64 layer")
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {**amd, "platform": {"os": "linux", "architecture": "amd64"}},
            {**arm, "platform": {"os": "linux", "architecture": "arm64"}},
        ],
    }
    r = w.admin.push_manifest(repo, "multi", index)
    assert r.status_code == 201, r.text
    index_digest = r.headers["Docker-Content-Digest"]
    lonely = w.image(repo, "lonely", b"in no index")
    w.policy(True)
    accept = {"Accept": "application/vnd.oci.image.index.v1+json"}
    assert w.viewer.request("GET", f"/v2/{repo}/manifests/multi", headers=accept).status_code == 403
    denied(pull(w.viewer, repo, amd["digest"]))
    cosign_sign(w.admin, repo, index_digest, key)
    assert w.viewer.request("GET", f"/v2/{repo}/manifests/multi", headers=accept).status_code == 200
    assert pull(w.viewer, repo, amd["digest"]).status_code == 200
    assert pull(w.viewer, repo, arm["digest"]).status_code == 200
    denied(pull(w.viewer, repo, lonely["digest"]))
    assert w.status(repo, amd["digest"])["status"] == "unsigned"
    w.policy(False)


def test_an_image_posing_as_an_attachment_is_still_gated(srv):
    """A runnable image that declares an artifactType and a subject is judged by what clients
    run (its config and layers), so it cannot slip past the policy as an SBOM would."""
    w = World(srv, "main")
    repo = "acme/main/posing/app"
    w.add_key("posing", public_pem(ec_key()))
    base = w.image(repo, "base", b"base")
    spdx = b'{"spdxVersion": "SPDX-2.3"}'
    digest, _ = w.admin.push_image(
        repo, "posing", [b"runnable"], artifactType="application/spdx+json", subject=base
    )
    sbom = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/spdx+json",
        "config": {"mediaType": notary.EMPTY, "digest": w.admin.push_blob(repo, b"{}"), "size": 2},
        "layers": [
            {
                "mediaType": "application/spdx+json",
                "digest": w.admin.push_blob(repo, spdx),
                "size": len(spdx),
            }
        ],
        "subject": base,
    }
    r = w.admin.push_manifest(repo, "sbom", sbom)
    assert r.status_code == 201, r.text
    w.policy(True)
    try:
        denied(pull(w.viewer, repo, digest))
        assert pull(w.viewer, repo, "sbom").status_code == 200
        assert w.status(repo, "sbom")["status"] == "attachment"
    finally:
        w.policy(False)


# ---- sigstore bundles ---------------------------------------------------------------------------


def test_sigstore_bundles_attached_as_referrers(srv):
    w = World(srv, "second")
    repo = "acme/second/bundles/app"
    key, ed, other = ec_key(), ed25519.Ed25519PrivateKey.generate(), ec_key()
    w.add_key("bundle-ec", public_pem(key))
    w.add_key("bundle-ed", public_pem(ed))
    dsse = w.image(repo, "dsse", b"dsse")
    message = w.image(repo, "message", b"message")
    ed_message = w.image(repo, "ed-message", b"ed message")
    tampered = w.image(repo, "tampered", b"tampered")
    attested = w.image(repo, "attested", b"attested only")
    stranger = w.image(repo, "stranger", b"stranger")
    bundle_sign(w.admin, repo, dsse, key)
    bundle_sign(w.admin, repo, message, key, form="message")
    body = w.admin.request(
        "GET", f"/v2/{repo}/manifests/ed-message", headers={"Accept": OCI_MANIFEST}
    ).content
    bundle_sign(w.admin, repo, ed_message, ed, form="message", manifest_body=body)
    bundle_sign(w.admin, repo, tampered, key, statement_digest=dsse["digest"])
    bundle_sign(w.admin, repo, attested, key, predicate="https://slsa.dev/provenance/v1")
    bundle_sign(w.admin, repo, stranger, other)

    st = w.status(repo, "dsse")
    assert st["status"] == "verified", st
    assert st["signatures"][0]["format"] == "sigstore-bundle"
    assert st["signatures"][0]["key"] == "bundle-ec"
    assert w.status(repo, "message")["status"] == "verified"
    assert w.status(repo, "ed-message")["signatures"][0]["key"] == "bundle-ed"
    st = w.status(repo, "tampered")
    assert st["status"] == "invalid" and "subject is not this manifest" in str(st)
    st = w.status(repo, "attested")
    assert st["status"] == "invalid" and "attestation" in str(st)
    assert w.status(repo, "stranger")["status"] == "invalid"

    w.policy(True)
    assert pull(w.viewer, repo, "dsse").status_code == 200
    denied(pull(w.viewer, repo, "stranger"))
    # The bundle referrers themselves stay readable, and listed.
    listed = w.viewer.request("GET", f"/v2/{repo}/referrers/{dsse['digest']}").json()
    (ref,) = listed["manifests"]
    assert ref["artifactType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    assert pull(w.viewer, repo, ref["digest"]).status_code == 200
    w.policy(False)


# ---- Notary Project -----------------------------------------------------------------------------


def test_notary_project_jws_signatures(srv):
    w = World(srv, "public")
    repo = "acme/public/notary/app"
    ca, ca_key = make_ca("Cargohold Test Root")
    leaf, leaf_key = make_leaf(ca, ca_key)
    other_ca, other_key = make_ca("Someone Else")
    stranger_leaf, stranger_key = make_leaf(other_ca, other_key)
    w.add_key("notary-root", cert_pem(ca))

    def signed(tag: str, **kw) -> dict:
        target = w.image(repo, tag, tag.encode())
        key = kw.pop("key", leaf_key)
        chain = kw.pop("chain", [leaf, ca])
        notary.sign_manifest(w.admin, repo, target, key, chain, **kw)
        return target

    signed("good")
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    rsa_leaf, _ = make_leaf(ca, ca_key, key=rsa_key, cn="RSA Signer")
    signed("rsa", key=rsa_key, chain=[rsa_leaf, ca])  # PS384, as the key size asks
    signed("leaf-only", chain=[leaf])  # the registered root issued the last link
    signed("expiring", expiry=notary.soon(30))
    signed("expired", expiry=datetime.now(UTC) - timedelta(minutes=1))
    signed("stranger", key=stranger_key, chain=[stranger_leaf, other_ca])
    signed(
        "plugin",
        crit_extra=["io.cncf.notary.verificationPlugin"],
        extra_protected={"io.cncf.notary.verificationPlugin": "com.example.plugin"},
    )
    signed("alg", alg="ES384")
    signed(
        "retarget",
        payload_override={
            "targetArtifact": {"mediaType": OCI_MANIFEST, "digest": "sha256:" + "1" * 64, "size": 1}
        },
    )
    server_leaf, server_key = make_leaf(ca, ca_key, eku=ExtendedKeyUsageOID.SERVER_AUTH)
    signed("tls-cert", key=server_key, chain=[server_leaf, ca])

    for tag in ("good", "rsa", "leaf-only", "expiring"):
        st = w.status(repo, tag)
        assert st["status"] == "verified", (tag, st)
        assert st["signatures"][0]["format"] == "notation"
        assert st["signatures"][0]["key"] == "notary-root"
    reasons = {
        "expired": "expired",
        "stranger": "no registered certificate",
        "plugin": "not understood",
        "alg": "does not verify",
        "retarget": "not this manifest",
        "tls-cert": "extended key usage",
    }
    for tag, words in reasons.items():
        st = w.status(repo, tag)
        assert st["status"] == "invalid" and words in str(st), (tag, st)

    # A tampered envelope (the payload swapped after signing) is refused.
    target = w.image(repo, "tampered", b"tampered")
    env = json.loads(notary.envelope(target, leaf_key, [leaf, ca]))
    swapped = {"targetArtifact": {**target, "annotations": {"approved": "yes"}}}
    env["payload"] = notary.b64url(json.dumps(swapped).encode())
    notary.attach(w.admin, repo, target, json.dumps(env).encode(), [leaf, ca])
    st = w.status(repo, "tampered")
    assert st["status"] == "invalid" and "does not verify" in str(st)

    # The public registry's anonymous pulls follow the policy too.
    w.policy(True)
    anonymous = OCIClient(srv.url)
    assert pull(anonymous, repo, "good").status_code == 200
    denied(pull(anonymous, repo, "stranger"))
    w.policy(False)


def test_hostile_signatures_are_reported_not_crashed_on(srv):
    w = World(srv, "second")
    repo = "acme/second/hostile/app"
    key = ec_key()
    w.add_key("hostile", public_pem(key))
    target = w.image(repo, "huge", b"huge")
    big = b"x" * (70 * 1024)
    layer = {
        "mediaType": "application/vnd.dev.cosign.simplesigning.v1+json",
        "digest": w.admin.push_blob(repo, big),
        "size": len(big),
        "annotations": {"dev.cosignproject.cosign/signature": "AAAA"},
    }
    cosign_sign(w.admin, repo, target["digest"], ec_key(), extra_layers=[layer])
    st = w.status(repo, "huge")
    assert st["status"] == "invalid" and "at most" in str(st)

    junk = w.image(repo, "junk", b"junk")
    body = b"[" * 5000
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": notary.ARTIFACT_TYPE,
        "config": {"mediaType": notary.EMPTY, "digest": w.admin.push_blob(repo, b"{}"), "size": 2},
        "layers": [
            {"mediaType": notary.JWS, "digest": w.admin.push_blob(repo, body), "size": len(body)}
        ],
        "subject": junk,
    }
    assert w.admin.push_manifest(repo, "junk-sig", manifest).status_code == 201
    st = w.status(repo, "junk")
    assert st["status"] == "invalid" and "not usable JSON" in str(st)


# ---- the console ---------------------------------------------------------------------------


def test_the_console_shows_verification_and_keys(srv):
    from tests.console.conftest import Console

    w = World(srv, "second")
    repo = "acme/second/console/app"
    key = ec_key()
    w.add_key("console<key>", public_pem(key), expect=400)  # names are plain
    w.add_key("console-key", public_pem(key))
    signed = w.image(repo, "signed", b"console signed")
    w.image(repo, "unsigned", b"console unsigned")
    cosign_sign(w.admin, repo, signed["digest"], key)

    viewer = Console(srv.url)
    viewer.sign_in("victor", srv.users["victor"])
    base = "/orgs/acme/second/r/console/app/-/manifests/"
    page = viewer.get(base + signed["digest"]).text
    assert 'data-signature="verified"' in page and "console-key" in page
    assert "simple-signing payload signed" in page
    page = viewer.get(
        base + viewer.follow(viewer.get(base + "unsigned")).url.rsplit("/", 1)[1]
    ).text
    assert 'data-signature="unsigned"' in page
    # Keys are listed to the registry's administrators only.
    assert "Signing keys" not in viewer.get("/orgs/acme/second").text
    admin = Console(srv.url)
    admin.sign_in("admin", srv.users["admin"])
    page = admin.get("/orgs/acme/second").text
    assert "Signing keys" in page and "console-key" in page and "ecdsa-p256" in page


def test_the_console_manages_keys_and_the_policy(srv):
    from tests.console.conftest import Console

    admin = Console(srv.url)
    admin.sign_in("admin", srv.users["admin"])
    page = "/orgs/acme/second"
    r = admin.follow(admin.post(f"{page}/signing-keys", {"name": "bad", "pem": "nope"}))
    assert "exactly one PEM block" in r.text
    assert "bad" not in [k["name"] for k in World(srv, "second").key_rows()]
    pem = public_pem(ec_key())
    r = admin.follow(admin.post(f"{page}/signing-keys", {"name": "from-console", "pem": pem}))
    assert "Signing key from-console registered" in r.text
    (row,) = [k for k in World(srv, "second").key_rows() if k["name"] == "from-console"]
    r = admin.follow(admin.post(f"{page}/signature-policy", {"require_signature": "true"}))
    assert "now require a valid signature" in r.text
    assert World(srv, "second").policy_now()["require_signature"] is True
    r = admin.follow(admin.post(f"{page}/signing-keys/{row['id']}/retire", {"confirm": "yes"}))
    assert "retired" in r.text
    r = admin.follow(admin.post(f"{page}/signature-policy", {"require_signature": "false"}))
    assert World(srv, "second").policy_now()["require_signature"] is False
    # Viewers may neither.
    viewer = Console(srv.url)
    viewer.sign_in("victor", srv.users["victor"])
    r = viewer.post(f"{page}/signature-policy", {"require_signature": "true"})
    assert r.status_code in (403, 404)
    assert World(srv, "second").policy_now()["require_signature"] is False
