"""Sigstore bundles attached as referrers (`cosign sign --new-bundle-format`): an image manifest
whose artifactType is the bundle's media type, one layer holding the bundle (the protobuf-specs
`Bundle` message in its JSON form). Its content is either a DSSE envelope whose in-toto
statement names the manifest as its subject, or a message signature over the manifest itself.

Verification material is a public key (its hint is unauthenticated, so every active key is
tried) or a certificate, trusted when it leads to a registered certificate. Transparency-log
entries and timestamps are not checked: keyless (Fulcio) signing needs both and is not offered.
"""

from __future__ import annotations

import hashlib

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from app.models import Manifest
from app.registry.signing import crypto
from app.registry.signing.reading import (
    MAX_ENVELOPE,
    Finding,
    Unreadable,
    b64,
    json_object,
    layers,
    manifest_doc,
    read,
)
from app.storage import BlobStore

MEDIA_TYPES = (
    "application/vnd.dev.sigstore.bundle.v0.3+json",
    "application/vnd.dev.sigstore.bundle+json;version=0.3",
    "application/vnd.dev.sigstore.bundle+json;version=0.2",
    "application/vnd.dev.sigstore.bundle+json;version=0.1",
)
IN_TOTO = "application/vnd.in-toto+json"
STATEMENT_TYPES = ("https://in-toto.io/Statement/v1", "https://in-toto.io/Statement/v0.1")
# cosign sign's predicate; other predicates are attestations, not signatures of approval.
SIGN_PREDICATE = "https://sigstore.dev/cosign/sign/v1"
DIGEST_ALGORITHMS = {"SHA2_256": ("sha256", hashes.SHA256), "SHA2_512": ("sha512", hashes.SHA512)}
MAX_CERTS = 10


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding: what a DSSE signature signs."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def _certificates(material: dict) -> list[x509.Certificate]:
    raw: list = []
    if isinstance(material.get("certificate"), dict):
        raw = [material["certificate"]]
    elif isinstance(material.get("x509CertificateChain"), dict):
        raw = material["x509CertificateChain"].get("certificates") or []
    if not isinstance(raw, list) or len(raw) > MAX_CERTS:
        raise Unreadable("the bundle's certificate chain is malformed")
    certs = []
    for item in raw:
        der = b64(item.get("rawBytes") if isinstance(item, dict) else None, "a certificate")
        try:
            certs.append(x509.load_der_x509_certificate(der))
        except ValueError:
            raise Unreadable("a certificate in the bundle cannot be read") from None
    return certs


def _keys(material, trusted: list[crypto.TrustedKey]) -> list[crypto.TrustedKey]:
    if not isinstance(material, dict):
        raise Unreadable("the bundle has no verification material")
    if isinstance(material.get("publicKey"), dict):
        return trusted
    certs = _certificates(material)
    if not certs:
        raise Unreadable("the bundle names neither a public key nor a certificate")
    try:
        found = crypto.anchor(certs, trusted)
    except crypto.ChainError as exc:
        raise Unreadable(str(exc)) from None
    return [crypto.TrustedKey(found.name, certs[0].public_key())]  # type: ignore[arg-type]


def _statement_names(payload: bytes, digest: str) -> None:
    statement = json_object(payload, "the in-toto statement")
    if statement.get("_type") not in STATEMENT_TYPES:
        raise Unreadable("the DSSE payload is not an in-toto statement")
    if statement.get("predicateType") != SIGN_PREDICATE:
        raise Unreadable(
            f"an attestation ({statement.get('predicateType')!r}), not a cosign signature"
        )
    algorithm, _, hexpart = digest.partition(":")
    subjects = statement.get("subject")
    for subject in subjects if isinstance(subjects, list) else []:
        named = subject.get("digest") if isinstance(subject, dict) else None
        if isinstance(named, dict) and named.get(algorithm) == hexpart:
            return
    raise Unreadable("the statement's subject is not this manifest")


def _dsse(envelope, digest: str, keys: list[crypto.TrustedKey]) -> str:
    if not isinstance(envelope, dict) or envelope.get("payloadType") != IN_TOTO:
        raise Unreadable(f"the DSSE envelope's payloadType is not {IN_TOTO}")
    payload = b64(envelope.get("payload"), "the DSSE payload")
    signatures = envelope.get("signatures")
    if not isinstance(signatures, list) or not signatures:
        raise Unreadable("the DSSE envelope has no signatures")
    message = pae(IN_TOTO, payload)
    for entry in signatures[:8]:
        sig = b64(entry.get("sig") if isinstance(entry, dict) else None, "a DSSE signature")
        for key in keys:
            if crypto.verify(key.public_key, sig, message):
                _statement_names(payload, digest)
                return key.name
    raise Unreadable("the DSSE envelope is signed by none of the registry's active keys")


def _message(store: BlobStore, signed: Manifest, message, keys: list[crypto.TrustedKey]) -> str:
    if not isinstance(message, dict):
        raise Unreadable("the message signature is malformed")
    md = message.get("messageDigest")
    if not isinstance(md, dict) or md.get("algorithm") not in DIGEST_ALGORITHMS:
        raise Unreadable("the message signature's digest algorithm is not supported")
    name, hash_type = DIGEST_ALGORITHMS[md["algorithm"]]
    claimed = b64(md.get("digest"), "the message digest")
    algorithm, _, hexpart = signed.digest.partition(":")
    if algorithm != name or claimed.hex() != hexpart:
        raise Unreadable("the message signature is over another message than this manifest")
    sig = b64(message.get("signature"), "the message signature")
    for key in keys:
        if crypto.verify_prehashed(key.public_key, sig, claimed, hash_type()):
            return key.name
    # Ed25519 signs the message itself, which is the manifest.
    body = read(store, signed.digest, signed.size, signed.size)
    if hashlib.new(name, body).hexdigest() == hexpart:
        for key in keys:
            if crypto.verify(key.public_key, sig, body):
                return key.name
    raise Unreadable("the message signature is made with none of the registry's active keys")


def check(store: BlobStore, referrer: Manifest, signed: Manifest, trusted) -> list[Finding]:
    finding = Finding("sigstore-bundle", referrer.digest)
    try:
        doc = manifest_doc(store, referrer)
        found = [x for x in layers(doc) if x.get("mediaType") in MEDIA_TYPES]
        if len(found) != 1:
            raise Unreadable("the referrer does not hold exactly one sigstore bundle layer")
        body = read(store, str(found[0].get("digest")), found[0].get("size"), MAX_ENVELOPE)
        bundle = json_object(body, "the bundle")
        if not str(bundle.get("mediaType", "")).startswith("application/vnd.dev.sigstore.bundle"):
            raise Unreadable("the layer is not a sigstore bundle")
        keys = _keys(bundle.get("verificationMaterial"), trusted)
        if "dsseEnvelope" in bundle:
            finding.key = _dsse(bundle["dsseEnvelope"], signed.digest, keys)
            finding.detail = "DSSE envelope signed"
        elif "messageSignature" in bundle:
            finding.key = _message(store, signed, bundle["messageSignature"], keys)
            finding.detail = "message signature over the manifest"
        else:
            raise Unreadable("the bundle holds neither a DSSE envelope nor a message signature")
        finding.valid = True
    except Unreadable as exc:
        finding.detail = str(exc)
    return [finding]
