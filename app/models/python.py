"""The Python package index: a fast view over the OCI artifacts that hold the files.

Rows are never deleted. A deleted file keeps its row, with deleted_at set, as the tombstone that
keeps its filename from ever being used again in that registry (as on PyPI).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import db, utcnow


class PythonProject(db.Model):
    __tablename__ = "python_projects"
    __table_args__ = (UniqueConstraint("registry_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    registry_id: Mapped[int] = mapped_column(
        ForeignKey("registries.id", ondelete="CASCADE"), index=True
    )
    # PEP 503 normalized; it is also the last component of the OCI repository name.
    name: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Bumped by every upload, yank and deletion: the index pages' Last-Modified.
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    files: Mapped[list[PythonFile]] = relationship(back_populates="project")


class PythonFile(db.Model):
    __tablename__ = "python_files"
    __table_args__ = (
        # Unique per registry forever: tombstones of deleted files take part.
        UniqueConstraint("registry_id", "filename"),
        Index("ix_python_files_content", "registry_id", "sha256"),
        Index("ix_python_files_release", "project_id", "version"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    registry_id: Mapped[int] = mapped_column(ForeignKey("registries.id", ondelete="CASCADE"))
    project_id: Mapped[int] = mapped_column(ForeignKey("python_projects.id", ondelete="CASCADE"))
    # Normalized (str(Version(...))), so "1.0" and "1.0.0" spellings of one release compare equal
    # only through packaging, never by accident of spelling.
    version: Mapped[str] = mapped_column(String(128))
    filename: Mapped[str] = mapped_column(String(255))
    filetype: Mapped[str] = mapped_column(String(16))
    python_version: Mapped[str | None] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    blake2_256: Mapped[str] = mapped_column(String(64))
    md5: Mapped[str] = mapped_column(String(32))
    requires_python: Mapped[str | None] = mapped_column(Text)
    metadata_version: Mapped[str] = mapped_column(String(8))
    # The METADATA (wheel) or PKG-INFO (sdist) file, stored as the manifest's config blob.
    metadata_sha256: Mapped[str] = mapped_column(String(64))
    metadata_size: Mapped[int] = mapped_column(BigInteger)
    manifest_digest: Mapped[str] = mapped_column(String(150))
    uploaded_by: Mapped[str | None] = mapped_column(String(64))
    uploaded_at: Mapped[datetime] = mapped_column(default=utcnow)
    yanked: Mapped[bool] = mapped_column(default=False)
    yanked_reason: Mapped[str | None] = mapped_column(Text)
    deleted_at: Mapped[datetime | None] = mapped_column()
    # PEP 740: the provenance object's sha256 (a layer of the file's attestation referrer) and
    # its publisher; both None for a file uploaded without attestations.
    provenance_sha256: Mapped[str | None] = mapped_column(String(64))
    publisher: Mapped[dict | None] = mapped_column(JSON)
    # The CI workload (OIDC issuer, subject, repository and workflow claims) whose trust
    # policy the upload came through; None for uploads by people and access tokens.
    workload_identity: Mapped[dict | None] = mapped_column(JSON)
    project: Mapped[PythonProject] = relationship(back_populates="files")

    @property
    def digest(self) -> str:
        return f"sha256:{self.sha256}"

    @property
    def metadata_digest(self) -> str:
        return f"sha256:{self.metadata_sha256}"
