"""Notary Project signatures: a referrer of artifactType `application/vnd.cncf.notary.signature`
whose one layer is a JWS envelope (`application/jose+json`, flattened JSON serialization), per
the Notary Project signature specification and its JWS envelope document.

Checked: the protected headers (alg matching the signing certificate's key, cty, the signing
scheme, every critical header understood, expiry), the x5c chain up to a registered certificate
(each link, validity now, a signing leaf), the signature over `protected.payload`, and the
payload's target artifact being this manifest. COSE envelopes are reported as unsupported.
"""

from __future__ import annotations

from datetime import UTC, datetime

from cryptography import x509

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

ARTIFACT_TYPE = "application/vnd.cncf.notary.signature"
JWS = "application/jose+json"
COSE = "application/cose"
PAYLOAD_TYPE = "application/vnd.cncf.notary.payload.v1+json"
SCHEME = "io.cncf.notary.signingScheme"
SIGNING_TIME = "io.cncf.notary.signingTime"
EXPIRY = "io.cncf.notary.expiry"
AUTHENTIC_TIME = "io.cncf.notary.authenticSigningTime"
# Critical headers this verifier processes; any other critical header fails verification (a
# verification plugin's, say), as the specification requires.
UNDERSTOOD = {SCHEME, EXPIRY, AUTHENTIC_TIME}
ENVELOPE_KEYS = {"payload", "protected", "header", "signature"}
MAX_CHAIN = 10
BAD_EKU = {
    x509.ExtendedKeyUsageOID.SERVER_AUTH,
    x509.ExtendedKeyUsageOID.CLIENT_AUTH,
    x509.ExtendedKeyUsageOID.EMAIL_PROTECTION,
    x509.ExtendedKeyUsageOID.TIME_STAMPING,
    x509.ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,
}


def _time(value, what: str) -> datetime:
    if not isinstance(value, str) or len(value) > 64:
        raise Unreadable(f"{what} is not an RFC 3339 time")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Unreadable(f"{what} is not an RFC 3339 time") from None
    if parsed.tzinfo is None:
        raise Unreadable(f"{what} has no time zone")
    return parsed


def _headers(protected: dict) -> None:
    if protected.get("cty") != PAYLOAD_TYPE:
        raise Unreadable(f"cty is not {PAYLOAD_TYPE}")
    scheme = protected.get(SCHEME)
    if scheme != "notary.x509":
        raise Unreadable(f"signing scheme {scheme!r} is not supported (notary.x509 is)")
    _time(protected.get(SIGNING_TIME), SIGNING_TIME)
    crit = protected.get("crit")
    if not isinstance(crit, list) or SCHEME not in crit:
        raise Unreadable(f"crit must list {SCHEME}")
    for name in crit:
        if name not in UNDERSTOOD:
            raise Unreadable(f"critical header {name!r} is not understood")
        if name not in protected:
            raise Unreadable(f"critical header {name!r} is missing")
    if EXPIRY in protected:
        if EXPIRY not in crit:
            raise Unreadable(f"{EXPIRY} must be critical")
        if _time(protected[EXPIRY], EXPIRY) <= datetime.now(UTC):
            raise Unreadable("the signature has expired")


def _chain(header) -> list[x509.Certificate]:
    x5c = header.get("x5c") if isinstance(header, dict) else None
    if not isinstance(x5c, list) or not x5c or len(x5c) > MAX_CHAIN:
        raise Unreadable("the unprotected header has no usable x5c certificate chain")
    certs = []
    for item in x5c:
        try:
            certs.append(x509.load_der_x509_certificate(b64(item, "an x5c certificate")))
        except ValueError:
            raise Unreadable("an x5c certificate cannot be read") from None
    leaf = certs[0]
    try:
        usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        raise Unreadable("the signing certificate has no key usage") from None
    if not usage.digital_signature or usage.key_cert_sign:
        raise Unreadable("the signing certificate is not for digital signatures")
    try:
        eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        eku = None
    if eku is not None and set(eku) & BAD_EKU:
        raise Unreadable("the signing certificate's extended key usage is not code signing")
    return certs


def _target(payload: bytes, signed: Manifest) -> None:
    doc = json_object(payload, "the JWS payload")
    target = doc.get("targetArtifact")
    if not isinstance(target, dict):
        raise Unreadable("the payload has no targetArtifact")
    if target.get("digest") != signed.digest or target.get("size") != signed.size:
        raise Unreadable("the payload's targetArtifact is not this manifest")
    if target.get("mediaType") != signed.media_type:
        raise Unreadable("the payload's targetArtifact has another media type")


def _verify(envelope: dict, signed: Manifest, trusted) -> str:
    if set(envelope) - ENVELOPE_KEYS or not {"payload", "protected", "signature"} <= set(envelope):
        raise Unreadable("not a flattened JWS JSON envelope")
    protected_b64, payload_b64 = envelope["protected"], envelope["payload"]
    if not isinstance(protected_b64, str) or not isinstance(payload_b64, str):
        raise Unreadable("protected and payload must be base64url strings")
    protected = json_object(b64(protected_b64, "protected", urlsafe=True), "the protected header")
    _headers(protected)
    alg = protected.get("alg")
    if alg not in {"PS256", "PS384", "PS512", "ES256", "ES384", "ES512"}:
        raise Unreadable(f"alg {alg!r} is not allowed")
    chain = _chain(envelope.get("header"))
    try:
        anchor = crypto.anchor(chain, trusted)
    except crypto.ChainError as exc:
        raise Unreadable(str(exc)) from None
    signature = b64(envelope["signature"], "signature", urlsafe=True)
    signing_input = f"{protected_b64}.{payload_b64}".encode("ascii")
    if not crypto.verify_jws(chain[0].public_key(), alg, signature, signing_input):  # type: ignore[arg-type]
        raise Unreadable(f"the signature does not verify with the signing certificate ({alg})")
    _target(b64(payload_b64, "payload", urlsafe=True), signed)
    return anchor.name


def check(store: BlobStore, referrer: Manifest, signed: Manifest, trusted) -> list[Finding]:
    finding = Finding("notation", referrer.digest)
    try:
        found = layers(manifest_doc(store, referrer))
        if len(found) != 1:
            raise Unreadable("a Notary Project signature has exactly one layer")
        media_type = found[0].get("mediaType")
        if media_type == COSE:
            raise Unreadable("COSE envelopes are not supported; sign with the JWS envelope")
        if media_type != JWS:
            raise Unreadable(f"envelope type {media_type!r} is not {JWS}")
        body = read(store, str(found[0].get("digest")), found[0].get("size"), MAX_ENVELOPE)
        finding.key = _verify(json_object(body, "the JWS envelope"), signed, trusted)
        finding.detail = "JWS envelope signed (notary.x509)"
        finding.valid = True
    except Unreadable as exc:
        finding.detail = str(exc)
    return [finding]
