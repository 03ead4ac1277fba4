"""Storage quotas: one row per organisation and per registry, with its limit and its usage, and
the distinct content each one holds, counted once however many repositories link it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import db, utcnow


class QuotaScope(db.Model):
    """An organisation's (organisation_id set) or a registry's (registry_id set) storage:
    `used_bytes` is kept up to date as links and manifests come and go, so a check reads one
    row instead of summing the scope's content."""

    __tablename__ = "quota_scopes"
    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), unique=True
    )
    registry_id: Mapped[int | None] = mapped_column(
        ForeignKey("registries.id", ondelete="CASCADE"), unique=True
    )
    # None: unlimited.
    limit_bytes: Mapped[int | None] = mapped_column(BigInteger)
    used_bytes: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class QuotaContent(db.Model):
    """A digest held in a scope: `refs` counts the blob links and manifests of the scope's
    repositories naming it. Its size counts toward the scope's usage while refs > 0."""

    __tablename__ = "quota_contents"
    scope_id: Mapped[int] = mapped_column(
        ForeignKey("quota_scopes.id", ondelete="CASCADE"), primary_key=True
    )
    digest: Mapped[str] = mapped_column(String(150), primary_key=True)
    refs: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(BigInteger)
