"""Blob links: which repository may read which content."""

from __future__ import annotations

from sqlalchemy import delete, select

from app import digests
from app.models import Blob, BlobLink, Repository, db
from app.models.upsert import insert_ignore
from app.registry import repositories
from app.registry.errors import RegistryError
from app.registry.names import RepoName


def check_digest(digest: str) -> str:
    try:
        digests.parse(digest)
    except digests.InvalidDigest as exc:
        raise RegistryError("DIGEST_INVALID", str(exc)) from None
    return digest


def linked_size(repo: Repository, digest: str) -> int | None:
    return db.session.execute(
        select(Blob.size)
        .join(BlobLink, BlobLink.digest == Blob.digest)
        .where(BlobLink.repository_id == repo.id, Blob.digest == digest)
    ).scalar_one_or_none()


def linked_sizes(repo: Repository, wanted: list[str]) -> dict[str, int]:
    if not wanted:
        return {}
    rows = db.session.execute(
        select(Blob.digest, Blob.size)
        .join(BlobLink, BlobLink.digest == Blob.digest)
        .where(BlobLink.repository_id == repo.id, Blob.digest.in_(set(wanted)))
    )
    return {d: s for d, s in rows}


def record(digest: str, size: int) -> None:
    """Only called once the content is in the store: rows never point at missing content."""
    insert_ignore(Blob, ["digest"], digest=digest, size=size)


def link(repo: Repository, digest: str) -> None:
    insert_ignore(BlobLink, ["repository_id", "digest"], repository_id=repo.id, digest=digest)


def mount(repo: Repository, digest: str, source: RepoName) -> bool:
    """Link a blob the source repository holds into `repo`; False when it holds none. The
    caller has checked that the requester may read the source."""
    source_repo = repositories.find(source)
    if source_repo is None or linked_size(source_repo, digest) is None:
        return False
    link(repo, digest)
    return True


def unlink(repo: Repository, digest: str) -> bool:
    result = db.session.execute(
        delete(BlobLink).where(BlobLink.repository_id == repo.id, BlobLink.digest == digest)
    )
    return result.rowcount > 0
