"""Taking files back: PEP 592 yanking (still downloadable, skipped by resolvers) and deletion
(manifests and links removed; the rows stay as tombstones so filenames never return)."""

from __future__ import annotations

from packaging.version import InvalidVersion, Version
from sqlalchemy import select

from app.access import audit
from app.errors import NotFound
from app.models import Manifest, PythonFile, PythonProject, db
from app.models.base import utcnow
from app.registry import blobs, deletion, gc, repositories
from app.registry.python.files import Target, live_files, project
from app.registry.python.names import normalize


def _select(
    target: Target, project_name: str, filename: str | None, version: str | None
) -> tuple[PythonProject, list[PythonFile]]:
    proj = project(target, normalize(project_name))
    files = live_files(proj)
    if filename is not None:
        files = [f for f in files if f.filename == filename]
    if version is not None:
        try:
            wanted = Version(version)
        except InvalidVersion:
            raise NotFound(f"No release {version!r} of {proj.name}") from None
        files = [f for f in files if Version(f.version) == wanted]
    if not files:
        raise NotFound(f"No such file or release of {proj.name}")
    return proj, files


def set_yanked(
    target: Target,
    project_name: str,
    *,
    filename: str | None = None,
    version: str | None = None,
    yanked: bool = True,
    reason: str | None = None,
) -> list[PythonFile]:
    """PEP 592: a yanked file stays downloadable, installers skip it unless pinned exactly."""
    proj, files = _select(target, project_name, filename, version)
    for f in files:
        f.yanked = yanked
        f.yanked_reason = (reason or None) if yanked else None
    proj.updated_at = utcnow()
    db.session.flush()
    action = "python.yank" if yanked else "python.unyank"
    for f in files:
        _audit(action, target, proj, f, {"reason": reason} if yanked and reason else None)
    return files


def _audit(action: str, target: Target, proj: PythonProject, f: PythonFile, extra=None) -> None:
    details = {"project": proj.name, "version": f.version, "sha256": f.sha256, **(extra or {})}
    audit.record(
        action,
        org=target.org,
        registry=target.registry_name,
        repository=str(target.repo_name(proj.name).full),
        reference=f.filename,
        details=details,
    )


def _drop_artifact(repo, proj: PythonProject, f: PythonFile) -> None:
    # The file, its metadata and its manifest may now be garbage: the collector looks again
    # after the grace period and keeps whatever another file or manifest still uses.
    gc.note([f.manifest_digest, f"sha256:{f.sha256}", f"sha256:{f.metadata_sha256}"])
    exists = db.session.execute(
        select(Manifest.id).where(
            Manifest.repository_id == repo.id, Manifest.digest == f.manifest_digest
        )
    ).first()
    if exists is not None:
        # Graph-aware: its referrers (the PEP 740 attestations, signatures) go with it.
        deletion.delete_manifest(repo, f.manifest_digest)
    # Content another live file of the project still uses (a shared METADATA) stays linked.
    for hexdigest, column in (
        (f.sha256, PythonFile.sha256),
        (f.metadata_sha256, PythonFile.metadata_sha256),
    ):
        still_used = db.session.execute(
            select(PythonFile.id).where(
                PythonFile.project_id == proj.id,
                PythonFile.deleted_at.is_(None),
                column == hexdigest,
            )
        ).first()
        if still_used is None:
            blobs.unlink(repo, f"sha256:{hexdigest}")


def delete(
    target: Target,
    project_name: str,
    *,
    filename: str | None = None,
    version: str | None = None,
) -> list[PythonFile]:
    """Remove files' manifests and links; their rows stay as tombstones so names never return."""
    proj, files = _select(target, project_name, filename, version)
    now = utcnow()
    for f in files:
        f.deleted_at = now
        _audit("python.delete", target, proj, f)
    proj.updated_at = now
    # Tombstones and the removal of manifests and links are one transaction.
    db.session.flush()
    repo = repositories.find(target.repo_name(proj.name))
    if repo is not None:
        for f in files:
            _drop_artifact(repo, proj, f)
    return files
