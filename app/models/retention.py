"""Retention policies: which tags and untagged manifests of a registry's repositories the
sweeper removes, and the indexes that let it find them without reading every tag."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import db, utcnow
from app.models.content import Manifest, Tag


class RetentionPolicy(db.Model):
    """Applied to the repositories of a registry whose path matches `repository_pattern`:
    keep the `keep_count` most recently pushed tags matching `tag_pattern`, remove manifests
    untagged for more than `untagged_days`, never touch tags matching `protect_pattern`."""

    __tablename__ = "retention_policies"
    id: Mapped[int] = mapped_column(primary_key=True)
    registry_id: Mapped[int] = mapped_column(
        ForeignKey("registries.id", ondelete="CASCADE"), index=True
    )
    repository_pattern: Mapped[str] = mapped_column(String(255), default="*")
    tag_pattern: Mapped[str] = mapped_column(String(128), default="*")
    keep_count: Mapped[int | None] = mapped_column(Integer)
    untagged_days: Mapped[int | None] = mapped_column(Integer)
    protect_pattern: Mapped[str | None] = mapped_column(String(128))
    enabled: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # Set when the sweeper claims the policy; several sweepers never run one policy at once.
    last_run_at: Mapped[datetime | None] = mapped_column()
    last_run_removed: Mapped[int] = mapped_column(Integer, default=0)


# "The newest tags of a repository" and "old manifests of a repository" as index range scans.
Index("ix_tags_repository_updated", Tag.repository_id, Tag.updated_at)
Index("ix_manifests_repository_created", Manifest.repository_id, Manifest.created_at)
