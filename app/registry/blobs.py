"""Blob links: which repository may read which content."""

from __future__ import annotations

from sqlalchemy import delete, select

from app import digests
from app.access import audit
from app.models import Blob, BlobLink, Repository, db
from app.models.upsert import insert_ignore
from app.registry import gc, quotas, repositories
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
        .where(BlobLink.repository_id == repo.id, Blob.digest == digest, Blob.state == gc.LIVE)
    ).scalar_one_or_none()


def linked_sizes(repo: Repository, wanted: list[str]) -> dict[str, int]:
    """Sizes of the live blobs among `wanted` linked here, their rows held `FOR SHARE` on
    PostgreSQL until the transaction ends, so the collector cannot take them meanwhile. Call
    it after the transaction's first write (SQLite's write lock, see app.registry.gc)."""
    if not wanted:
        return {}
    rows = db.session.execute(
        select(Blob.digest, Blob.size)
        .join(BlobLink, BlobLink.digest == Blob.digest)
        .where(
            BlobLink.repository_id == repo.id,
            Blob.digest.in_(set(wanted)),
            Blob.state == gc.LIVE,
        )
        .order_by(Blob.digest)
        .with_for_update(read=True, of=Blob)
    )
    present = {d: s for d, s in rows}
    if present and db.session.get_bind().dialect.name == "postgresql":
        # Waiting for a row lock, the statement kept the links it had read before; the
        # collector, which held it, may have dropped one of ours meanwhile (gc._prune_links).
        # Now that we hold the rows, a fresh read sees what it committed.
        still = set(
            db.session.execute(
                select(BlobLink.digest).where(
                    BlobLink.repository_id == repo.id, BlobLink.digest.in_(list(present))
                )
            ).scalars()
        )
        present = {d: s for d, s in present.items() if d in still}
    return present


def require_live(digest: str) -> int:
    """Refuse content the collector is deleting: the client must upload it again. Called after
    writing the link or row that will reference it, so the write lock (SQLite) or this row lock
    (PostgreSQL) orders us against the collector's mark; see app.registry.gc. Returns its size."""
    row = db.session.execute(
        select(Blob.state, Blob.size).where(Blob.digest == digest).with_for_update(read=True)
    ).first()
    if row is None or row[0] != gc.LIVE:
        raise RegistryError(
            "BLOB_UNKNOWN", f"blob {digest} is being garbage-collected: upload it again"
        )
    return row[1]


def record(digest: str, size: int) -> None:
    """Claim the row for content about to be stored (or already stored): call it before
    writing the object, so the collector cannot delete the object underneath. The row is
    committed only with the rest of the transaction, after the object is in the store."""
    if insert_ignore(Blob, ["digest"], digest=digest, size=size) != 1:
        # A row of ours is live and no one else's until we commit; one found may be dying (and
        # a count the driver could not tell is read as found).
        require_live(digest)


def link(repo: Repository, digest: str) -> None:
    """Let `repo` read the blob. New to the repository, it counts toward the registry's and
    the organisation's storage, and is refused (QuotaExceeded) past their limits."""
    linked = insert_ignore(
        BlobLink, ["repository_id", "digest"], repository_id=repo.id, digest=digest
    )
    size = require_live(digest)
    if linked:
        quotas.charge(repo, digest, size)


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
    if result.rowcount > 0:
        gc.note([digest])  # a candidate's row before a scope's, as every writer takes them
        quotas.release([repo.registry_id], digest)
        audit.on_repository("blob.delete", repo, digest)
    return result.rowcount > 0


def abandon(stored: list[tuple[str, int]]) -> None:
    """After a refusal rolled a push back: content it had already put in the store gets a row
    and becomes a candidate for the collector, which deletes it unless something uses it."""
    items = sorted(set(stored))
    for digest, size in items:
        insert_ignore(Blob, ["digest"], digest=digest, size=size)
    gc.note([d for d, _ in items])
