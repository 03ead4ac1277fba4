"""Signature verification: the keys a registry trusts, its pull policy, and cached results."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import db, utcnow


class SigningKey(db.Model):
    """A public key or X.509 certificate (PEM) whose signatures the registry accepts. Retired keys
    stay listed for the record and verify nothing."""

    __tablename__ = "signing_keys"
    __table_args__ = (UniqueConstraint("registry_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    registry_id: Mapped[int] = mapped_column(
        ForeignKey("registries.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # "public-key" or "certificate"
    algorithm: Mapped[str] = mapped_column(String(32))  # "ecdsa-p256", "rsa-3072", "ed25519"
    # sha256 of the DER public key (SubjectPublicKeyInfo), whatever form it was registered in.
    fingerprint: Mapped[str] = mapped_column(String(80))
    pem: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    retired_at: Mapped[datetime | None] = mapped_column()


class SigningPolicy(db.Model):
    """One row per registry that has keys or a policy. `key_version` moves with every change to
    the registry's keys, which invalidates every cached verification of its manifests."""

    __tablename__ = "signing_policies"
    registry_id: Mapped[int] = mapped_column(
        ForeignKey("registries.id", ondelete="CASCADE"), primary_key=True
    )
    require_signature: Mapped[bool] = mapped_column(default=False)
    # Callers who may push to the registry read unsigned manifests (signers fetch what they sign).
    exempt_writers: Mapped[bool] = mapped_column(default=True)
    key_version: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class SignatureCheck(db.Model):
    """The last verification of a manifest: valid while the registry's key version and the set of
    signatures found (`evidence`, a hash of their digests) are what they were."""

    __tablename__ = "signature_checks"
    manifest_id: Mapped[int] = mapped_column(
        ForeignKey("manifests.id", ondelete="CASCADE"), primary_key=True
    )
    key_version: Mapped[int] = mapped_column()
    evidence: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))  # "verified", "invalid", "unsigned"
    signatures: Mapped[list] = mapped_column(JSON)
    checked_at: Mapped[datetime] = mapped_column(default=utcnow)
