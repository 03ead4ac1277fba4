"""The index rows behind the Simple API and the console: which projects and files a registry
offers.

Files are OCI artifacts (`app/pypi/artifact.py` writes them); these rows make listing them one
indexed query. A deleted file's row stays as a tombstone, so its filename is never offered again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from packaging.version import InvalidVersion, Version
from sqlalchemy import func, select

from app.errors import Invalid, NotFound
from app.models import PythonFile, PythonProject, Registry, db
from app.registry.errors import RegistryError
from app.registry.names import RepoName, parse_repository
from app.registry.python.names import repository

# The most a METADATA file may hold, wherever it is read (an upload, a page showing it).
MAX_METADATA = 8 * 1024 * 1024


@dataclass(frozen=True)
class Target:
    """Where an operation applies: one registry of one organisation."""

    org: str
    registry_name: str
    registry: Registry

    def repo_name(self, project: str) -> RepoName:
        full = repository(self.org, self.registry_name, project)
        try:
            return parse_repository(full)
        except RegistryError:
            raise Invalid(
                f"Project name {project!r} is too long for this registry's repository names"
            ) from None


def find_project(target: Target, name: str) -> PythonProject | None:
    return db.session.execute(
        select(PythonProject).where(
            PythonProject.registry_id == target.registry.id, PythonProject.name == name
        )
    ).scalar_one_or_none()


def _live_projects(target: Target):
    return select(PythonFile.project_id).where(
        PythonFile.registry_id == target.registry.id, PythonFile.deleted_at.is_(None)
    )


def project_names(target: Target) -> list[str]:
    """Names of projects with at least one file still available. Names only: building an ORM
    object per project dominated the root index's time with thousands of projects."""
    return list(
        db.session.execute(
            select(PythonProject.name)
            .where(
                PythonProject.registry_id == target.registry.id,
                PythonProject.id.in_(_live_projects(target)),
            )
            .order_by(PythonProject.name)
        ).scalars()
    )


def index_version(target: Target) -> tuple[int, int]:
    """Changes whenever the set of listed projects may have changed. File rows are never
    removed (deleted files stay as tombstones, so names are never reused) and a deletion is
    never undone: every upload raises the highest file id, every deletion the count of
    tombstones. Independent of clocks, so replicas agree; two aggregates over one index."""
    of_registry = PythonFile.registry_id == target.registry.id
    # Two index seeks (0013_performance), never a scan of the registry's files.
    newest = select(func.max(PythonFile.id)).where(of_registry).scalar_subquery()
    deleted = (
        select(func.count())
        .where(of_registry, PythonFile.deleted_at.is_not(None))
        .scalar_subquery()
    )
    newest, deleted = db.session.execute(select(func.coalesce(newest, 0), deleted)).one()
    return int(newest), int(deleted)


def last_change(target: Target) -> datetime | None:
    return db.session.execute(
        select(func.max(PythonProject.updated_at)).where(
            PythonProject.registry_id == target.registry.id
        )
    ).scalar_one_or_none()


def project(target: Target, name: str) -> PythonProject:
    found = find_project(target, name)
    if found is None:
        raise NotFound("Not Found")
    return found


def live_files(proj: PythonProject) -> list[PythonFile]:
    rows = db.session.execute(
        select(PythonFile).where(PythonFile.project_id == proj.id, PythonFile.deleted_at.is_(None))
    ).scalars()
    return sorted(rows, key=lambda f: (Version(f.version), f.filename))


def versions(files: list[PythonFile]) -> list[str]:
    """Release versions in order, one spelling per release."""
    seen: dict[Version, str] = {}
    for f in files:
        seen.setdefault(Version(f.version), f.version)
    return [seen[v] for v in sorted(seen)]


def same_version(f: PythonFile, version: str) -> bool:
    """Whether `version` names the file's release, in any of its spellings."""
    try:
        return Version(version) == Version(f.version)
    except InvalidVersion:
        return False


def find_file(target: Target, project_name: str, filename: str) -> PythonFile:
    row = db.session.execute(
        select(PythonFile)
        .join(PythonProject)
        .where(
            PythonFile.registry_id == target.registry.id,
            PythonFile.filename == filename,
            PythonProject.name == project_name,
            PythonFile.deleted_at.is_(None),
        )
    ).scalar_one_or_none()
    if row is None:
        raise NotFound("Not Found")
    return row
