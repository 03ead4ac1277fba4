"""What is stored: repositories, blobs and the links that scope them, manifests, tags, uploads."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import db, utcnow


class Repository(db.Model):
    __tablename__ = "repositories"
    id: Mapped[int] = mapped_column(primary_key=True)
    registry_id: Mapped[int] = mapped_column(ForeignKey("registries.id"), index=True)
    # The full name, <org>/<registry>/<path>, as clients spell it.
    name: Mapped[str] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Blob(db.Model):
    """Content known to be in the blob store under its digest. Global; reached only via links."""

    __tablename__ = "blobs"
    digest: Mapped[str] = mapped_column(String(150), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # "live", or "deleting" once the collector has decided to remove it: from then on nothing
    # may link or reference it, and pushes meet BLOB_UNKNOWN and upload it again.
    state: Mapped[str] = mapped_column(
        String(16), default="live", server_default="live", index=True
    )


class BlobLink(db.Model):
    """A repository may read a blob only through a link: the tenant boundary for content."""

    __tablename__ = "blob_links"
    __table_args__ = (UniqueConstraint("repository_id", "digest"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    repository_id: Mapped[int] = mapped_column(ForeignKey("repositories.id", ondelete="CASCADE"))
    digest: Mapped[str] = mapped_column(ForeignKey("blobs.digest"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Manifest(db.Model):
    __tablename__ = "manifests"
    __table_args__ = (
        UniqueConstraint("repository_id", "digest"),
        # The referrers index: subject digest -> referring manifests, kept at PUT time.
        Index("ix_manifests_referrers", "repository_id", "subject_digest"),
        # The collector's "is this digest a manifest anywhere?"
        Index("ix_manifests_digest", "digest"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    repository_id: Mapped[int] = mapped_column(ForeignKey("repositories.id", ondelete="CASCADE"))
    digest: Mapped[str] = mapped_column(ForeignKey("blobs.digest"))
    media_type: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    artifact_type: Mapped[str | None] = mapped_column(String(255))
    subject_digest: Mapped[str | None] = mapped_column(String(150))
    annotations: Mapped[dict | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Who first pushed it: kept on the row, as the audit log's rows expire.
    pushed_by: Mapped[str | None] = mapped_column(String(64))
    tags: Mapped[list[Tag]] = relationship(back_populates="manifest", passive_deletes=True)


class Tag(db.Model):
    __tablename__ = "tags"
    __table_args__ = (UniqueConstraint("repository_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    repository_id: Mapped[int] = mapped_column(ForeignKey("repositories.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(128))
    manifest_id: Mapped[int] = mapped_column(
        ForeignKey("manifests.id", ondelete="CASCADE"), index=True
    )
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # Who last pointed the tag at its manifest.
    pushed_by: Mapped[str | None] = mapped_column(String(64))
    manifest: Mapped[Manifest] = relationship(back_populates="tags")


class Upload(db.Model):
    """An upload session. Its bytes live in the blob store; this row lets any replica resume it."""

    __tablename__ = "uploads"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    repository_id: Mapped[int] = mapped_column(ForeignKey("repositories.id", ondelete="CASCADE"))
    # Bound to whoever opened it, so a leaked session id is useless to anyone else.
    principal: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
