"""Garbage collection's bookkeeping: what manifests reference, candidates, and the figures."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import db, utcnow


class ManifestReference(db.Model):
    """A digest a manifest names (config, layers, index children, subject), written at PUT:
    the collector asks "does anything still reference this digest?" with one indexed lookup."""

    __tablename__ = "manifest_references"
    manifest_id: Mapped[int] = mapped_column(
        ForeignKey("manifests.id", ondelete="CASCADE"), primary_key=True
    )
    digest: Mapped[str] = mapped_column(String(150), primary_key=True, index=True)


class GcCandidate(db.Model):
    """Content that lost a reference; looked at again once `review_at` has passed."""

    __tablename__ = "gc_candidates"
    digest: Mapped[str] = mapped_column(String(150), primary_key=True)
    review_at: Mapped[datetime] = mapped_column(index=True)


class GcStats(db.Model):
    """One row: running totals of what the collector removed."""

    __tablename__ = "gc_stats"
    id: Mapped[int] = mapped_column(primary_key=True)
    blobs_deleted: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_reclaimed: Mapped[int] = mapped_column(BigInteger, default=0)
    last_run_at: Mapped[datetime | None] = mapped_column()
    last_run_deleted: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class TagRule(db.Model):
    """Tag immutability: a tag of the registry matching `pattern` is never moved or deleted."""

    __tablename__ = "tag_rules"
    __table_args__ = (UniqueConstraint("registry_id", "pattern"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    registry_id: Mapped[int] = mapped_column(
        ForeignKey("registries.id", ondelete="CASCADE"), index=True
    )
    pattern: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
