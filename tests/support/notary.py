"""Notary Project signatures built as the specification describes them (signature-specification
and signature-envelope-jws): a payload naming the target manifest's descriptor, protected headers
(alg, cty, io.cncf.notary.signingScheme, signingTime, optional expiry, crit), the x5c chain in the
unprotected header, and the flattened JWS JSON envelope, stored as a referrer whose artifactType
is application/vnd.cncf.notary.signature, so the tests need no notation binary."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

from tests.support.client import OCIClient

ARTIFACT_TYPE = "application/vnd.cncf.notary.signature"
JWS = "application/jose+json"
PAYLOAD_TYPE = "application/vnd.cncf.notary.payload.v1+json"
EMPTY = "application/vnd.oci.empty.v1+json"
HASHES = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def alg_for(key) -> str:
    if isinstance(key, rsa.RSAPrivateKey):
        return {2048: "PS256", 3072: "PS384", 4096: "PS512"}[key.key_size]
    return {256: "ES256", 384: "ES384", 521: "ES512"}[key.curve.key_size]


def jws_sign(key, alg: str, signing_input: bytes) -> bytes:
    algorithm = HASHES[alg[2:]]()
    if alg.startswith("PS"):
        pad = padding.PSS(mgf=padding.MGF1(algorithm), salt_length=algorithm.digest_size)
        return key.sign(signing_input, pad, algorithm)
    der = key.sign(signing_input, ec.ECDSA(algorithm))
    r, s = utils.decode_dss_signature(der)
    size = (key.curve.key_size + 7) // 8
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def rfc3339(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def envelope(
    target: dict,
    key,
    chain: list[x509.Certificate],
    *,
    alg: str | None = None,
    expiry: datetime | None = None,
    extra_protected: dict | None = None,
    crit_extra: list[str] = (),  # type: ignore[assignment]
    payload_override: dict | None = None,
) -> bytes:
    """The JWS envelope signing `target` (the manifest's descriptor)."""
    alg = alg or alg_for(key)
    protected = {
        "alg": alg,
        "cty": PAYLOAD_TYPE,
        "io.cncf.notary.signingScheme": "notary.x509",
        "io.cncf.notary.signingTime": rfc3339(datetime.now(UTC)),
        "crit": ["io.cncf.notary.signingScheme", *crit_extra],
    }
    if expiry is not None:
        protected["io.cncf.notary.expiry"] = rfc3339(expiry)
        protected["crit"].append("io.cncf.notary.expiry")
    protected.update(extra_protected or {})
    payload = payload_override or {"targetArtifact": target}
    protected_b64 = b64url(json.dumps(protected).encode())
    payload_b64 = b64url(json.dumps(payload).encode())
    signature = jws_sign(key, alg, f"{protected_b64}.{payload_b64}".encode())
    return json.dumps(
        {
            "payload": payload_b64,
            "protected": protected_b64,
            "header": {
                "x5c": [
                    base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode()
                    for c in chain
                ],
                "io.cncf.notary.signingAgent": "cargohold-tests/1.0",
            },
            "signature": b64url(signature),
        }
    ).encode()


def attach(c: OCIClient, repo: str, target: dict, body: bytes, chain) -> str:
    """Store the envelope as notation does: an OCI 1.1 referrer with one JWS layer."""
    thumbprints = [
        hashlib.sha256(x.public_bytes(serialization.Encoding.DER)).hexdigest() for x in chain
    ]
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": ARTIFACT_TYPE,
        "config": {"mediaType": EMPTY, "digest": c.push_blob(repo, b"{}"), "size": 2},
        "layers": [{"mediaType": JWS, "digest": c.push_blob(repo, body), "size": len(body)}],
        "subject": {
            "mediaType": target["mediaType"],
            "digest": target["digest"],
            "size": target["size"],
        },
        "annotations": {
            "io.cncf.notary.x509chain.thumbprint#S256": json.dumps(thumbprints),
            "org.opencontainers.image.created": rfc3339(datetime.now(UTC)),
        },
    }
    ref = "sha256:" + hashlib.sha256(json.dumps(manifest).encode()).hexdigest()
    r = c.push_manifest(repo, ref, manifest)
    assert r.status_code == 201, r.text
    return ref


def sign_manifest(c: OCIClient, repo: str, target: dict, key, chain, **kw) -> str:
    return attach(c, repo, target, envelope(target, key, chain, **kw), chain)


def soon(days: int) -> datetime:
    return datetime.now(UTC) + timedelta(days=days)
