"""The keys and certificates a registry trusts: registered as PEM under a name, retired (kept,
trusting nothing) or removed. Every change moves the registry's key version, so cached
verifications are recomputed against the new set."""

from __future__ import annotations

import hashlib
import re

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from sqlalchemy import select, update

from app.errors import Conflict, Invalid, NotFound
from app.limits import MAX_INT
from app.models import SigningKey, SigningPolicy, db
from app.models.base import utcnow
from app.models.upsert import insert_ignore
from app.registry.signing.crypto import CURVE_BITS, PublicKey, TrustedKey

MAX_PEM = 16 * 1024
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----")


def _algorithm(key) -> str:
    if isinstance(key, ec.EllipticCurvePublicKey):
        bits = CURVE_BITS.get(key.curve.name)
        if bits is None:
            raise Invalid(f"curve {key.curve.name} is not supported: use P-256, P-384 or P-521")
        return f"ecdsa-p{bits}"
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < 2048:
            raise Invalid(f"an RSA key of {key.key_size} bits is too weak: 2048 at least")
        return f"rsa-{key.key_size}"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "ed25519"
    raise Invalid("unsupported key type: use ECDSA, RSA or Ed25519")


def parse_pem(pem: str) -> tuple[str, PublicKey, x509.Certificate | None]:
    """(kind, public key, certificate) from one PEM block: a PUBLIC KEY or a CERTIFICATE."""
    if len(pem) > MAX_PEM:
        raise Invalid(f"the PEM text is over {MAX_PEM} bytes")
    if "\x00" in pem:
        # PEM is text; PostgreSQL text cannot even store a NUL.
        raise Invalid("the PEM text holds a NUL character")
    blocks = _BLOCK.findall(pem)
    if len(blocks) != 1:
        raise Invalid("give exactly one PEM block: a PUBLIC KEY or a CERTIFICATE")
    label = blocks[0]
    if "PRIVATE" in label:
        raise Invalid("that is a private key: register its public key, never the private one")
    data = pem.encode("ascii", "replace")
    try:
        if label == "CERTIFICATE":
            cert = x509.load_pem_x509_certificate(data)
            return "certificate", cert.public_key(), cert  # type: ignore[return-value]
        if label == "PUBLIC KEY":
            return "public-key", serialization.load_pem_public_key(data), None  # type: ignore[return-value]
    except (ValueError, TypeError):
        raise Invalid(f"the {label} block cannot be read") from None
    raise Invalid(f"a {label} block is neither a PUBLIC KEY nor a CERTIFICATE")


def fingerprint(key: PublicKey) -> str:
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "sha256:" + hashlib.sha256(der).hexdigest()


def policy_row(registry_id: int) -> SigningPolicy:
    """The registry's policy row, created on first use (concurrent creators end with one)."""
    insert_ignore(
        SigningPolicy,
        ["registry_id"],
        registry_id=registry_id,
        require_signature=False,
        exempt_writers=True,
        key_version=0,
        updated_at=utcnow(),
    )
    row = db.session.get(SigningPolicy, registry_id)
    db.session.refresh(row)
    return row


def find_policy(registry_id: int) -> SigningPolicy | None:
    return db.session.get(SigningPolicy, registry_id)


def key_version(registry_id: int) -> int:
    row = find_policy(registry_id)
    return row.key_version if row else 0


def _bump(registry_id: int) -> None:
    policy_row(registry_id)
    # In SQL, so two concurrent changes both move the version.
    db.session.execute(
        update(SigningPolicy)
        .where(SigningPolicy.registry_id == registry_id)
        .values(key_version=SigningPolicy.key_version + 1, updated_at=utcnow())
    )
    db.session.flush()


def of_registry(registry_id: int) -> list[SigningKey]:
    return list(
        db.session.execute(
            select(SigningKey).where(SigningKey.registry_id == registry_id).order_by(SigningKey.id)
        ).scalars()
    )


def add(registry_id: int, name: str, pem: str) -> SigningKey:
    if not NAME.match(name or ""):
        raise Invalid("a key name is 1-64 letters, digits, '.', '_' or '-', starting alphanumeric")
    kind, key, _cert = parse_pem(pem)
    algorithm = _algorithm(key)
    exists = db.session.execute(
        select(SigningKey.id).where(SigningKey.registry_id == registry_id, SigningKey.name == name)
    ).first()
    if exists:
        raise Conflict(f"a key named {name!r} exists in this registry")
    row = SigningKey(
        registry_id=registry_id,
        name=name,
        kind=kind,
        algorithm=algorithm,
        fingerprint=fingerprint(key),
        pem=pem.strip() + "\n",
        created_at=utcnow(),
    )
    db.session.add(row)
    db.session.flush()
    _bump(registry_id)
    return row


def find(registry_id: int, key_id: int) -> SigningKey:
    # An id past a BIGINT would make the database driver raise, not answer "none".
    row = db.session.get(SigningKey, key_id) if key_id <= MAX_INT else None
    if row is None or row.registry_id != registry_id:
        raise NotFound(f"signing key {key_id} not found")
    return row


def active_count(registry_id: int) -> int:
    return sum(1 for k in of_registry(registry_id) if k.retired_at is None)


def _last_key_guard(row: SigningKey) -> None:
    """A registry whose every pull is refused is never one click away."""
    policy = find_policy(row.registry_id)
    last = row.retired_at is None and active_count(row.registry_id) <= 1
    if policy and policy.require_signature and last:
        raise Conflict(
            "this is the registry's last active key and its policy requires signatures: "
            "add the new key first, or turn the policy off"
        )


def set_policy(registry_id: int, require: bool, exempt_writers: bool | None = None):
    if require and active_count(registry_id) == 0:
        raise Conflict("the registry has no active signing key: register one first")
    row = policy_row(registry_id)
    row.require_signature = require
    if exempt_writers is not None:
        row.exempt_writers = exempt_writers
    db.session.flush()
    return row


def retire(row: SigningKey) -> SigningKey:
    _last_key_guard(row)
    if row.retired_at is None:
        row.retired_at = utcnow()
        db.session.flush()
        _bump(row.registry_id)
    return row


def remove(row: SigningKey) -> None:
    _last_key_guard(row)
    registry_id = row.registry_id
    db.session.delete(row)
    db.session.flush()
    _bump(registry_id)


def trusted(registry_id: int) -> list[TrustedKey]:
    """The registry's active keys, parsed (they were checked when registered)."""
    out = []
    for row in of_registry(registry_id):
        if row.retired_at is not None:
            continue
        try:
            _kind, key, cert = parse_pem(row.pem)
        except Invalid:
            continue
        out.append(TrustedKey(row.name, key, cert))
    return out


def describe(row: SigningKey) -> dict:
    return {
        "id": row.id,
        "name": row.name,
        "kind": row.kind,
        "algorithm": row.algorithm,
        "fingerprint": row.fingerprint,
        "pem": row.pem,
        "created_at": row.created_at.isoformat() + "Z",
        "retired_at": row.retired_at.isoformat() + "Z" if row.retired_at else None,
        "active": row.retired_at is None,
    }
