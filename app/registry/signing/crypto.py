"""Signature checks with `cryptography`, and X.509 chains anchored at registered certificates.

Cosign and DSSE signatures name no algorithm: the key decides (ECDSA with SHA-256, or the
curve's own hash as sigstore-go signs; RSA PKCS#1 v1.5 or PSS; Ed25519). JWS names its
algorithm, which must match the key (algorithm substitution is refused).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils

PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey

CURVE_HASH = {"secp256r1": hashes.SHA256, "secp384r1": hashes.SHA384, "secp521r1": hashes.SHA512}
CURVE_BITS = {"secp256r1": 256, "secp384r1": 384, "secp521r1": 521}


@dataclass(frozen=True)
class TrustedKey:
    """A registered key or certificate, ready to verify with."""

    name: str
    public_key: PublicKey
    certificate: x509.Certificate | None = None


def _hashes_for(key) -> list[hashes.HashAlgorithm]:
    if isinstance(key, ec.EllipticCurvePublicKey):
        own = CURVE_HASH.get(key.curve.name, hashes.SHA256)
        return [hashes.SHA256()] if own is hashes.SHA256 else [hashes.SHA256(), own()]
    return [hashes.SHA256()]


def verify(key: PublicKey, signature: bytes, message: bytes) -> bool:
    """Whether `signature` over `message` was made with the private half of `key`."""
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, message)
            return True
        for algorithm in _hashes_for(key):
            if _verify_hashed(key, signature, message, algorithm, algorithm):
                return True
    except (InvalidSignature, UnsupportedAlgorithm, ValueError):
        return False
    return False


def verify_prehashed(
    key: PublicKey, signature: bytes, digest: bytes, algorithm: hashes.HashAlgorithm
) -> bool:
    """A signature over a message known only by its digest (not possible with Ed25519)."""
    if isinstance(key, ed25519.Ed25519PublicKey):
        return False
    try:
        return _verify_hashed(key, signature, digest, utils.Prehashed(algorithm), algorithm)
    except (InvalidSignature, UnsupportedAlgorithm, ValueError):
        return False


def _verify_hashed(key, signature: bytes, data: bytes, algorithm, inner) -> bool:
    """`algorithm` hashes `data` (or is Prehashed); `inner` is the hash itself, for PSS."""
    if isinstance(key, ec.EllipticCurvePublicKey):
        try:
            key.verify(signature, data, ec.ECDSA(algorithm))
            return True
        except InvalidSignature:
            return False
    if isinstance(key, rsa.RSAPublicKey):
        for pad in (
            padding.PKCS1v15(),
            padding.PSS(mgf=padding.MGF1(inner), salt_length=padding.PSS.AUTO),
        ):
            try:
                key.verify(signature, data, pad, algorithm)
                return True
            except InvalidSignature:
                continue
    return False


# ---- JWS -------------------------------------------------------------------------------------

JWS_HASH = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}


def jws_alg_for(key: PublicKey) -> str | None:
    """The one `alg` the Notary Project allows for this key (its type and size decide)."""
    if isinstance(key, rsa.RSAPublicKey):
        return {2048: "PS256", 3072: "PS384", 4096: "PS512"}.get(key.key_size)
    if isinstance(key, ec.EllipticCurvePublicKey):
        return {256: "ES256", 384: "ES384", 521: "ES512"}.get(CURVE_BITS.get(key.curve.name, 0))
    return None


def verify_jws(key: PublicKey, alg: str, signature: bytes, signing_input: bytes) -> bool:
    if jws_alg_for(key) != alg:
        return False
    algorithm = JWS_HASH[alg[2:]]()
    try:
        if isinstance(key, rsa.RSAPublicKey):
            pad = padding.PSS(mgf=padding.MGF1(algorithm), salt_length=algorithm.digest_size)
            key.verify(signature, signing_input, pad, algorithm)
            return True
        if isinstance(key, ec.EllipticCurvePublicKey):
            # JWS carries ECDSA signatures as r || s, each the curve's size in bytes.
            size = (CURVE_BITS[key.curve.name] + 7) // 8
            if len(signature) != 2 * size:
                return False
            r = int.from_bytes(signature[:size], "big")
            s = int.from_bytes(signature[size:], "big")
            key.verify(utils.encode_dss_signature(r, s), signing_input, ec.ECDSA(algorithm))
            return True
    except (InvalidSignature, UnsupportedAlgorithm, ValueError):
        return False
    return False


# ---- certificate chains ----------------------------------------------------------------------


class ChainError(Exception):
    """Why a certificate chain is not trusted (meant for the verification report)."""


def _valid_now(cert: x509.Certificate, now: datetime) -> None:
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise ChainError(f"certificate {cert.subject.rfc4514_string()!r} is not valid now")


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> None:
    try:
        constraints = issuer.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = None
    if constraints is None or not constraints.ca:
        raise ChainError(f"{issuer.subject.rfc4514_string()!r} is not a CA certificate")
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        raise ChainError(
            f"{cert.subject.rfc4514_string()!r} is not issued by "
            f"{issuer.subject.rfc4514_string()!r}"
        ) from None


def anchor(chain: list[x509.Certificate], trusted: list[TrustedKey]) -> TrustedKey:
    """The registered certificate `chain` (leaf first) leads to, each link checked and every
    certificate up to it valid now; ChainError otherwise."""
    certs = [t for t in trusted if t.certificate is not None]
    if not chain:
        raise ChainError("no certificate")
    if not certs:
        raise ChainError("the registry has no certificates registered")
    now = datetime.now(UTC)
    for i, cert in enumerate(chain):
        _valid_now(cert, now)
        for t in certs:
            if t.certificate == cert:
                return t
        nxt = chain[i + 1] if i + 1 < len(chain) else None
        if nxt is not None:
            _issued_by(cert, nxt)
            continue
        # The chain stops below a registered root or intermediate that issued its last link.
        for t in certs:
            try:
                _valid_now(t.certificate, now)
                _issued_by(cert, t.certificate)
                return t
            except ChainError:
                continue
    raise ChainError("the certificate chain leads to no registered certificate")
