"""The index rows behind the Simple API: which projects and files a registry offers.

Files are OCI artifacts (see `artifact`); these rows make listing them one indexed query. A
deleted file's row stays as a tombstone, so its filename is never offered again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from packaging.version import Version
from sqlalchemy import func, select

from app.caching import BoundedCache
from app.models import PythonFile, PythonProject, Registry, db
from app.pypi import simple
from app.pypi.errors import bad_request, not_found
from app.pypi.names import repository
from app.registry.errors import RegistryError
from app.registry.names import RepoName, parse_repository


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
            raise bad_request(
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
    newest, deleted = db.session.execute(
        select(func.coalesce(func.max(PythonFile.id), 0), func.count(PythonFile.deleted_at)).where(
            PythonFile.registry_id == target.registry.id
        )
    ).one()
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
        raise not_found()
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
        raise not_found()
    return row


# Rendered root indexes per registry and content type, reused while the registry's set of
# projects is unchanged (`index_version`): one cheap aggregate query instead of listing and
# rendering thousands of names on every request. Per worker; a miss just renders again.
_ROOT_PAGES: BoundedCache[tuple[int, str], tuple[tuple[int, int], str]] = BoundedCache(256)


def root_page(target: Target, content_type: str) -> str:
    """The Simple API root index, in the negotiated content type."""
    key = (target.registry.id, content_type)
    version = index_version(target)
    cached = _ROOT_PAGES.get(key)
    if cached is not None and cached[0] == version:
        return cached[1]
    render = simple.index_json if simple.is_json(content_type) else simple.index_html
    body = render(project_names(target))
    _ROOT_PAGES.put(key, (version, body))
    return body
