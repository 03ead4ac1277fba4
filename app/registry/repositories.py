"""Repositories live inside an existing organisation and registry; they appear on first push."""

from __future__ import annotations

from sqlalchemy import bindparam, select

from app.access.policy import find_registry
from app.models import Repository, db
from app.models.upsert import insert_ignore
from app.registry.errors import RegistryError
from app.registry.names import RepoName

# Built once: every push and most reads look a repository up by name.
_BY_NAME = select(Repository).where(Repository.name == bindparam("name"))


def find(name: RepoName) -> Repository | None:
    return db.session.execute(_BY_NAME, {"name": name.full}).scalar_one_or_none()


def require(name: RepoName) -> Repository:
    repo = find(name)
    if repo is None:
        raise RegistryError("NAME_UNKNOWN", f"repository {name.full!r} is not known")
    return repo


def ensure(name: RepoName) -> Repository:
    """The repository, created if its registry exists; never creates a tenant by accident."""
    repo = find(name)
    if repo is not None:
        return repo
    registry = find_registry(name.org, name.registry)
    if registry is None:
        raise RegistryError(
            "NAME_UNKNOWN", f"registry {name.org}/{name.registry} does not exist; create it first"
        )
    insert_ignore(Repository, ["name"], name=name.full, registry_id=registry.id)
    return require(name)
