"""Online garbage collection: candidates, the sweeper, and the reconcile pass.

A digest becomes a candidate when something stops referencing it (a manifest or tag deleted,
a blob link removed, an upload finished). Once its review time has passed the sweeper looks
again, with indexed existence queries only, so the cost follows the garbage, never the
registry's size. Content nothing references is first marked `deleting` in a committed
transaction, then its object is deleted (idempotently), then its row.

The race with pushes is settled on the blob row: whoever links or references content writes
first (which takes SQLite's single write lock) and then reads the row `FOR SHARE` on
PostgreSQL, refusing it unless it is `live` (`app.registry.blobs.require_live`); the sweeper
holds the row `FOR UPDATE` while it re-checks and marks it. Either the push commits first and
the sweeper sees its link or reference, or the sweeper commits first and the push answers
BLOB_UNKNOWN, so the client uploads the content again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import delete, exists, func, select, update

from app.access import audit
from app.models import Blob, BlobLink, GcCandidate, GcStats, Manifest, ManifestReference, db
from app.models.base import utcnow
from app.models.transaction import unit_of_work
from app.models.upsert import insert_ignore, upsert
from app.registry import quotas
from app.storage import BlobStore

LIVE = "live"
DELETING = "deleting"
# A candidate whose blob row a push holds locked is looked at again this much later.
BUSY_RETRY = timedelta(seconds=5)


@dataclass
class SweepResult:
    examined: int = 0
    deleted: list[str] = field(default_factory=list)
    bytes_reclaimed: int = 0
    kept: int = 0
    postponed: int = 0


def grace() -> timedelta:
    return timedelta(seconds=current_app.extensions["cargohold.settings"].gc_grace_seconds)


def _postgres() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


def note(digests: Iterable[str], when: datetime | None = None) -> None:
    """Record content that just lost a reference, to be looked at after the grace period."""
    review_at = when or utcnow() + grace()
    # One order for every writer, so two transactions noting the same digests cannot deadlock.
    for digest in sorted(set(digests)):
        upsert(GcCandidate, ["digest"], ["review_at"], digest=digest, review_at=review_at)


def referenced(digest: str, now: datetime) -> bool:
    """Anything that keeps this content: a manifest stored under it, a manifest naming it, or
    a blob link younger than the grace period (a push whose manifest has not arrived yet)."""
    recent = now - grace()
    return bool(
        db.session.execute(
            select(
                exists().where(Manifest.digest == digest)
                | exists().where(ManifestReference.digest == digest)
                | exists().where(BlobLink.digest == digest, BlobLink.created_at > recent)
            )
        ).scalar()
    )


def _stale_links(digest: str, now: datetime) -> list[tuple[int, int]]:
    """(link id, repository id) of the links of content that stays, used elsewhere, in
    repositories where no manifest names it any more, past the grace period: they go, and
    their scopes get the storage back. The blob row is held `FOR UPDATE` meanwhile, and a
    manifest push re-reads its links once it holds the rows `FOR SHARE`
    (`app.registry.blobs.linked_sizes`), so none is left naming content its repository
    cannot read."""
    recent = now - grace()
    named_here = (
        select(ManifestReference.digest)
        .join(Manifest, Manifest.id == ManifestReference.manifest_id)
        .where(ManifestReference.digest == digest, Manifest.repository_id == BlobLink.repository_id)
    )
    stored_here = select(Manifest.id).where(
        Manifest.digest == digest, Manifest.repository_id == BlobLink.repository_id
    )
    rows = db.session.execute(
        select(BlobLink.id, BlobLink.repository_id).where(
            BlobLink.digest == digest,
            BlobLink.created_at <= recent,
            ~named_here.exists(),
            ~stored_here.exists(),
        )
    ).all()
    return [(i, r) for i, r in rows]


def _all_links(digest: str) -> list[tuple[int, int]]:
    rows = db.session.execute(
        select(BlobLink.id, BlobLink.repository_id).where(BlobLink.digest == digest)
    ).all()
    return [(i, r) for i, r in rows]


def _unlink(digest: str, links: list[tuple[int, int]]) -> bool:
    """Delete these links and give their scopes the storage back; False, touching nothing,
    when a push holds one of those scopes (the candidate is looked at again shortly: the
    sweeper never waits for a scope's row while it holds blob rows pushes may wait for)."""
    if not links:
        return True
    repository_ids = [r for _, r in links]
    if not quotas.lock_scopes(repository_ids):
        return False
    db.session.execute(delete(BlobLink).where(BlobLink.id.in_([i for i, _ in links])))
    quotas.release_in_repositories(repository_ids, digest)
    return True


def _lock(digest: str) -> tuple[int, str] | None | bool:
    """The blob's (size, state) with its row locked; None when there is no row; False when a
    push holds it (PostgreSQL: it is being linked right now, so it is not garbage yet)."""
    query = select(Blob.size, Blob.state).where(Blob.digest == digest)
    if _postgres():
        row = db.session.execute(query.with_for_update(skip_locked=True)).first()
        if row is None and db.session.get(Blob, digest) is not None:
            return False
    else:
        row = db.session.execute(query).first()
    return None if row is None else (row[0], row[1])


def _mark(digest: str, now: datetime, result: SweepResult) -> tuple[str, int] | None:
    taken = db.session.execute(
        delete(GcCandidate).where(GcCandidate.digest == digest, GcCandidate.review_at <= now)
    ).rowcount
    if not taken:
        return None  # another sweeper took it, or it lost a reference again meanwhile
    result.examined += 1
    locked = _lock(digest)
    if locked is False:
        note([digest], now + BUSY_RETRY)
        result.postponed += 1
        return None
    if locked is None or locked[1] != LIVE:
        return None
    keep = referenced(digest, now)
    # Links past the grace period that no manifest uses go, with the content or without it,
    # and so does the storage they counted for in each scope.
    if not _unlink(digest, _stale_links(digest, now) if keep else _all_links(digest)):
        note([digest], now + BUSY_RETRY)
        result.postponed += 1
        return None
    if keep:
        result.kept += 1
        return None
    db.session.execute(update(Blob).where(Blob.digest == digest).values(state=DELETING))
    return digest, locked[0]


def _mark_batch(now: datetime, size: int, result: SweepResult) -> list[tuple[str, int]] | None:
    """Mark a batch of due candidates; committed before any object is deleted."""
    with unit_of_work():
        query = (
            select(GcCandidate.digest)
            .where(GcCandidate.review_at <= now)
            .order_by(GcCandidate.review_at)
            .limit(size)
        )
        if _postgres():
            query = query.with_for_update(skip_locked=True)
        due = list(db.session.execute(query).scalars())
        if not due:
            return None
        marked = [m for d in due if (m := _mark(d, now, result)) is not None]
    return marked


def _remove(store: BlobStore, marked: list[tuple[str, int]], result: SweepResult) -> None:
    """Objects first, rows after: a crash in between leaves rows `deleting`, finished later."""
    for digest, _size in marked:
        store.delete(digest)
    with unit_of_work():
        gone = [d for d, _ in marked]
        _forget(gone)
        freed = sum(s for _, s in marked)
        _add_stats(len(gone), freed)
        # Content is global: its deletion is a site-wide event, by the collector.
        audit.record_many("gc.delete", ((d, {"size": s}) for d, s in marked), audit.COLLECTOR)
    result.deleted.extend(d for d, _ in marked)
    result.bytes_reclaimed += sum(s for _, s in marked)


def _add_stats(count: int, freed: int, run_at: datetime | None = None) -> None:
    # Two sweepers' first runs may both find no row: the insert tolerates the other's.
    insert_ignore(
        GcStats,
        ["id"],
        id=1,
        blobs_deleted=0,
        bytes_reclaimed=0,
        last_run_deleted=0,
        updated_at=utcnow(),
    )
    stats = db.session.get(GcStats, 1, with_for_update=_postgres(), populate_existing=True)
    assert stats is not None
    stats.blobs_deleted += count
    stats.bytes_reclaimed += freed
    stats.updated_at = utcnow()
    if run_at is not None:
        stats.last_run_at = run_at
        stats.last_run_deleted = count
    db.session.flush()


def _resume(store: BlobStore, size: int, result: SweepResult) -> None:
    """Finish deletions a crashed sweeper left between deleting the object and the row."""
    while True:
        rows = db.session.execute(
            select(Blob.digest, Blob.size).where(Blob.state == DELETING).limit(size)
        ).all()
        db.session.rollback()
        if not rows:
            return
        _remove(store, [(d, s) for d, s in rows], result)


def sweep(store: BlobStore, batch_size: int | None = None, now: datetime | None = None):
    """One pass over the due candidates, in batches. Commits per batch, so it runs beside
    pushes and other sweepers (PostgreSQL's SKIP LOCKED spreads the batches between them)."""
    size = batch_size or current_app.extensions["cargohold.settings"].gc_batch_size
    now = now or utcnow()
    result = SweepResult()
    _resume(store, size, result)
    while (marked := _mark_batch(now, size, result)) is not None:
        if marked:
            _remove(store, marked, result)
    with unit_of_work():
        _add_stats(0, 0, run_at=now)
        stats = db.session.get(GcStats, 1)
        assert stats is not None
        stats.last_run_deleted = len(result.deleted)
    return result


def status() -> dict:
    now = utcnow()
    pending, due = db.session.execute(
        select(
            func.count(GcCandidate.digest),
            func.count(GcCandidate.digest).filter(GcCandidate.review_at <= now),
        )
    ).one()
    deleting = db.session.execute(
        select(func.count(Blob.digest)).where(Blob.state == DELETING)
    ).scalar_one()
    stats = db.session.get(GcStats, 1)
    return {
        "candidates_pending": int(pending),
        "candidates_due": int(due),
        "blobs_being_deleted": int(deleting),
        "blobs_deleted": stats.blobs_deleted if stats else 0,
        "bytes_reclaimed": stats.bytes_reclaimed if stats else 0,
        "last_run_at": stats.last_run_at if stats else None,
        "last_run_deleted": stats.last_run_deleted if stats else 0,
        "grace_seconds": int(grace().total_seconds()),
    }


def reconcile(store: BlobStore, now: datetime | None = None) -> list[str]:
    """Delete stored objects no row knows, older than the grace period: what a crash between
    writing an object and committing its row leaves. This pass lists the whole store, so it
    runs rarely (`flask gc reconcile`), apart from the sweeper."""
    cutoff = (now or utcnow()) - grace()
    removed: list[str] = []
    batch: list[str] = []

    def flush() -> None:
        known = set(db.session.execute(select(Blob.digest).where(Blob.digest.in_(batch))).scalars())
        db.session.rollback()
        claimed = _claim_orphans([d for d in batch if d not in known])
        for digest in claimed:
            store.delete(digest)
        if claimed:
            # Objects first, rows after: a crash in between leaves rows the sweeper finishes.
            with unit_of_work():
                _forget(claimed)
            removed.extend(claimed)
        batch.clear()

    for digest, modified in store.list_blobs():
        if modified < cutoff:
            batch.append(digest)
            if len(batch) >= 500:
                flush()
    if batch:
        flush()
    return removed


def _forget(digests: list[str]) -> None:
    """The rows of content whose objects are deleted."""
    db.session.execute(delete(Blob).where(Blob.digest.in_(digests), Blob.state == DELETING))


def _claim_orphans(digests: list[str]) -> list[str]:
    """Rows `deleting` for objects no row knew, committed before any object goes. A push that
    claims one of them meanwhile (its content uploaded again, the object found in place) either
    wrote its row first, and the claim leaves that digest alone, or finds ours and is refused
    (`blobs.require_live`) instead of committing a row whose object is then deleted."""
    if not digests:
        return []
    claimed: list[str] = []
    with unit_of_work():
        for digest in sorted(set(digests)):  # the order every writer takes rows in
            if insert_ignore(Blob, ["digest"], digest=digest, size=0, state=DELETING) == 1:
                claimed.append(digest)
    return claimed
