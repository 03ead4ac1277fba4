"""The offline vulnerability database (OSV records, imported in versions), the reports computed
from it, and each registry's "block at severity >= X" policy with its allow-list."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Float, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import db, utcnow


class VulnDatabaseVersion(db.Model):
    """One import that changed the database. Reports are cached per version, so a new one
    makes every report be computed again."""

    __tablename__ = "vuln_database_versions"
    id: Mapped[int] = mapped_column(primary_key=True)
    imported_at: Mapped[datetime] = mapped_column(default=utcnow)
    source: Mapped[str] = mapped_column(String(255))
    # sha256 over the imported records' (id, modified, content digest): the same data imported
    # again is recognised and makes no new version.
    content_digest: Mapped[str] = mapped_column(String(64), index=True)
    advisories: Mapped[int] = mapped_column(default=0)
    added: Mapped[int] = mapped_column(default=0)
    updated: Mapped[int] = mapped_column(default=0)
    skipped: Mapped[int] = mapped_column(default=0)


class Advisory(db.Model):
    """One OSV record, reduced to what matching, policy and display need."""

    __tablename__ = "advisories"
    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    modified: Mapped[str] = mapped_column(String(64))
    digest: Mapped[str] = mapped_column(String(64))
    summary: Mapped[str | None] = mapped_column(Text)
    details: Mapped[str | None] = mapped_column(Text)
    aliases: Mapped[list | None] = mapped_column(JSON)
    # The CVSS base score from the record's vectors, or None; the label otherwise given.
    score: Mapped[float | None] = mapped_column(Float)
    vector: Mapped[str | None] = mapped_column(String(255))
    label: Mapped[str | None] = mapped_column(String(32))
    references: Mapped[list | None] = mapped_column(JSON)
    withdrawn: Mapped[str | None] = mapped_column(String(64))
    version_id: Mapped[int] = mapped_column(ForeignKey("vuln_database_versions.id"))


class AffectedPackage(db.Model):
    """An `affected[]` entry: the package (ecosystem, normalised name) with its ranges and
    versions, kept as the record gives them."""

    __tablename__ = "affected_packages"
    __table_args__ = (Index("ix_affected_packages_package", "ecosystem", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    advisory_id: Mapped[str] = mapped_column(
        ForeignKey("advisories.id", ondelete="CASCADE"), index=True
    )
    # Lower-cased, without a release suffix ("debian" for "Debian:12"); the full string is kept.
    ecosystem: Mapped[str] = mapped_column(String(64))
    ecosystem_full: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255))
    ranges: Mapped[list | None] = mapped_column(JSON)
    versions: Mapped[list | None] = mapped_column(JSON)


class VulnReport(db.Model):
    """A computed report, for one subject in one repository, against one database version.
    `inputs` names what it was computed from (the SBOM digests), so a new SBOM is seen."""

    __tablename__ = "vuln_reports"
    __table_args__ = (UniqueConstraint("repository_id", "subject_digest", "version_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    repository_id: Mapped[int] = mapped_column(ForeignKey("repositories.id", ondelete="CASCADE"))
    subject_digest: Mapped[str] = mapped_column(String(150))
    version_id: Mapped[int] = mapped_column(
        ForeignKey("vuln_database_versions.id", ondelete="CASCADE")
    )
    inputs: Mapped[str] = mapped_column(Text)
    report: Mapped[dict] = mapped_column(JSON)
    computed_at: Mapped[datetime] = mapped_column(default=utcnow)


class VulnPolicy(db.Model):
    """A registry's policy: refuse pulls of content with a finding at or above `block_at`."""

    __tablename__ = "vuln_policies"
    registry_id: Mapped[int] = mapped_column(
        ForeignKey("registries.id", ondelete="CASCADE"), primary_key=True
    )
    block_at: Mapped[float | None] = mapped_column(Float)
    # "allow" or "block": what a finding whose severity is unknown does.
    unknown: Mapped[str] = mapped_column(String(8), default="allow")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class VulnAllowance(db.Model):
    """An accepted advisory: it never blocks a pull in this registry until `expires_at`."""

    __tablename__ = "vuln_allowances"
    __table_args__ = (UniqueConstraint("registry_id", "advisory_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    registry_id: Mapped[int] = mapped_column(
        ForeignKey("registries.id", ondelete="CASCADE"), index=True
    )
    advisory_id: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[datetime] = mapped_column()
    created_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
