"""Signatures made by the tests themselves, in the shapes the signing tools produce: cosign's
tag scheme (simple-signing payloads), sigstore bundles attached as referrers, and X.509
certificates for Notary Project signatures (tests/support/notary.py builds the envelopes)."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.support.client import OCIClient

SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
BUNDLE_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
EMPTY = "application/vnd.oci.empty.v1+json"
IN_TOTO = "application/vnd.in-toto+json"
SIGN_PREDICATE = "https://sigstore.dev/cosign/sign/v1"


def ec_key(curve=None) -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(curve or ec.SECP256R1())


def public_pem(key) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def cert_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def sign(key, message: bytes) -> bytes:
    """As cosign and sigstore-go sign with a key pair: ECDSA/RSA over SHA-256, Ed25519 raw."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(message)
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    return key.sign(message, ec.ECDSA(hashes.SHA256()))


def _empty_config(c: OCIClient, repo: str) -> dict:
    return {"mediaType": EMPTY, "digest": c.push_blob(repo, b"{}"), "size": 2}


def cosign_sign(
    c: OCIClient,
    repo: str,
    digest: str,
    key,
    *,
    signed_digest: str | None = None,
    extra_layers: list[dict] = (),  # type: ignore[assignment]
    certificate: str | None = None,
) -> str:
    """Push a `sha256-<hex>.sig` signature manifest as cosign does; returns its digest."""
    payload = json.dumps(
        {
            "critical": {
                "identity": {"docker-reference": repo},
                "image": {"docker-manifest-digest": signed_digest or digest},
                "type": "cosign container image signature",
            },
            "optional": None,
        }
    ).encode()
    annotations = {
        "dev.cosignproject.cosign/signature": base64.b64encode(sign(key, payload)).decode()
    }
    if certificate:
        annotations["dev.sigstore.cosign/certificate"] = certificate
    config = json.dumps({"architecture": "", "os": "", "rootfs": {"type": "layers"}}).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": c.push_blob(repo, config),
            "size": len(config),
        },
        "layers": [
            {
                "mediaType": SIMPLE_SIGNING,
                "digest": c.push_blob(repo, payload),
                "size": len(payload),
                "annotations": annotations,
            },
            *extra_layers,
        ],
    }
    tag = digest.replace(":", "-") + ".sig"
    r = c.push_manifest(repo, tag, manifest)
    assert r.status_code == 201, r.text
    return r.headers["Docker-Content-Digest"]


def pae(payload_type: str, payload: bytes) -> bytes:
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def bundle_sign(
    c: OCIClient,
    repo: str,
    subject: dict,
    key,
    *,
    form: str = "dsse",
    predicate: str = SIGN_PREDICATE,
    statement_digest: str | None = None,
    manifest_body: bytes | None = None,
    certificate: x509.Certificate | None = None,
) -> str:
    """Attach a sigstore bundle (v0.3) to `subject` (a descriptor) as a referrer."""
    material: dict = {"tlogEntries": []}
    if certificate is not None:
        der = certificate.public_bytes(serialization.Encoding.DER)
        material["certificate"] = {"rawBytes": _b64(der)}
    else:
        material["publicKey"] = {"hint": "test key"}
    bundle: dict = {"mediaType": BUNDLE_TYPE, "verificationMaterial": material}
    if form == "dsse":
        algorithm, _, hexpart = (statement_digest or subject["digest"]).partition(":")
        statement = json.dumps(
            {
                "_type": "https://in-toto.io/Statement/v1",
                "subject": [{"digest": {algorithm: hexpart}}],
                "predicateType": predicate,
                "predicate": {},
            }
        ).encode()
        bundle["dsseEnvelope"] = {
            "payload": _b64(statement),
            "payloadType": IN_TOTO,
            "signatures": [{"sig": _b64(sign(key, pae(IN_TOTO, statement))), "keyid": ""}],
        }
    else:
        digest = bytes.fromhex(subject["digest"].split(":")[1])
        if isinstance(key, ed25519.Ed25519PrivateKey):
            assert manifest_body is not None
            sig = key.sign(manifest_body)
        else:
            sig = key.sign(digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
        bundle["messageSignature"] = {
            "messageDigest": {"algorithm": "SHA2_256", "digest": _b64(digest)},
            "signature": _b64(sig),
        }
    body = json.dumps(bundle).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": BUNDLE_TYPE,
        "config": _empty_config(c, repo),
        "layers": [
            {"mediaType": BUNDLE_TYPE, "digest": c.push_blob(repo, body), "size": len(body)}
        ],
        "subject": subject,
        "annotations": {"dev.sigstore.bundle.content": form},
    }
    ref = "sha256:" + hashlib.sha256(json.dumps(manifest).encode()).hexdigest()
    r = c.push_manifest(repo, ref, manifest)
    assert r.status_code == 201, r.text
    return ref


# ---- certificates ----------------------------------------------------------------------------


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca(cn: str = "Test Root", key=None) -> tuple[x509.Certificate, object]:
    key = key or ec_key()
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return cert, key


def make_leaf(
    ca: x509.Certificate,
    ca_key,
    key=None,
    cn: str = "Test Signer",
    *,
    days: int = 30,
    eku=ExtendedKeyUsageOID.CODE_SIGNING,
) -> tuple[x509.Certificate, object]:
    key = key or ec_key()
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key
