"""Upload sessions: bytes stream into the store while hashed, then move into place verified."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterable
from datetime import timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm.attributes import set_committed_value

from app import digests
from app.access import Principal
from app.caching import BoundedCache
from app.models import Repository, Upload, db
from app.models.base import utcnow
from app.registry import blobs, gc
from app.registry.errors import RegistryError
from app.storage import BlobStore, Chunk


class _HashCache:
    """Running sha256 per upload, so a chunked upload is hashed once, as it streams.

    Process-local and only an optimisation: a replica that missed a chunk finds the offset
    differs and re-reads the upload at completion instead.
    """

    def __init__(self, limit: int = 512):
        self._items: BoundedCache[str, tuple[int, object]] = BoundedCache(limit)

    def take(self, upload_id: str, offset: int):
        item = self._items.pop(upload_id)
        if item is None:
            return digests.hasher() if offset == 0 else None
        size, h = item
        return h if size == offset else None

    def keep(self, upload_id: str, offset: int, h) -> None:
        self._items.put(upload_id, (offset, h))

    def drop(self, upload_id: str) -> None:
        self._items.pop(upload_id)


_hashes = _HashCache()
# How stale a session's last-activity stamp may get before an append refreshes it.
ACTIVITY_STAMP_EVERY = timedelta(minutes=1)
# The stamp lags a session's activity by up to that minute: the sweep never takes sessions
# idle for less than this, whatever it is asked.
MIN_SWEEP_AGE = timedelta(minutes=10)


def range_header(size: int) -> str:
    # Distribution's convention: an empty upload reports "0-0" too.
    return f"0-{max(size - 1, 0)}"


def start(store: BlobStore, repo: Repository, principal: Principal) -> Upload:
    upload = Upload(id=uuid.uuid4().hex, repository_id=repo.id, principal=principal.key)
    store.upload_start(upload.id)
    db.session.add(upload)
    db.session.flush()
    return upload


def find(store: BlobStore, repo: Repository, upload_id: str, principal: Principal) -> Upload:
    upload = db.session.execute(
        select(Upload).where(
            Upload.id == upload_id,
            Upload.repository_id == repo.id,
            Upload.principal == principal.key,
        )
    ).scalar_one_or_none()
    if upload is None or not upload_id.isalnum() or store.upload_size(upload_id) is None:
        raise RegistryError("BLOB_UPLOAD_UNKNOWN", f"upload {upload_id!r} is not known")
    return upload


def size_of(store: BlobStore, upload: Upload) -> int:
    size = store.upload_size(upload.id)
    if size is None:
        raise RegistryError("BLOB_UPLOAD_UNKNOWN", f"upload {upload.id!r} is not known")
    return size


def append(
    store: BlobStore,
    upload: Upload,
    chunks: Iterable[Chunk],
    first: int | None = None,
    length: int | None = None,
) -> int:
    """Append a chunk; `first` is its Content-Range start, which must be where we are. The
    pieces may be views of one buffer refilled for the next (`BlobStore.upload_append`)."""
    # Read now: streaming commits, which expires the row, and reading it again would cost a
    # query (and fail if the session was swept meanwhile).
    upload_id = upload.id
    offset = size_of(store, upload)
    if first is not None and first != offset:
        raise RegistryError(
            "BLOB_UPLOAD_INVALID",
            f"chunk starts at {first} but the upload holds {offset} bytes",
            status=416,
            headers={
                "Range": range_header(offset),
                "Location": "",
                "Docker-Upload-UUID": upload_id,
            },
        )
    h = _hashes.take(upload_id, offset)
    try:
        size = store.upload_append(upload_id, chunks, h.update if h else _ignore)
    except BaseException:
        _hashes.drop(upload_id)
        raise
    if length is not None and size - offset != length:
        # The body was shorter than announced: keep what arrived, the client resumes from Range.
        raise RegistryError(
            "SIZE_INVALID",
            f"received {size - offset} bytes, announced {length}",
            headers={"Range": range_header(size), "Docker-Upload-UUID": upload_id},
        )
    if h is not None:
        _hashes.keep(upload_id, size, h)
    return size


def note_activity(upload: Upload) -> bool:
    """Stamp the session's last activity, which the sweep goes by: called before a request's
    body streams (a long request is activity from its start). To the minute, since stamping
    every chunk would make each PATCH a write, which on SQLite queues behind the one writer.
    True when it wrote."""
    now = utcnow()
    if now - upload.updated_at < ACTIVITY_STAMP_EVERY:
        return False
    stamped = db.session.execute(
        update(Upload)
        .where(Upload.id == upload.id)
        .values(updated_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if stamped != 1:  # swept since it was read
        raise RegistryError("BLOB_UPLOAD_UNKNOWN", f"upload {upload.id!r} is not known")
    set_committed_value(upload, "updated_at", now)
    return True


def _ignore(_chunk: bytes) -> None:
    pass


def _actual_digest(store: BlobStore, upload: Upload, size: int, algorithm: str) -> str:
    h = _hashes.take(upload.id, size) if algorithm == "sha256" else None
    if h is None:
        h = digests.hasher(algorithm)
        for chunk in store.upload_read(upload.id):
            h.update(chunk)
    return f"{algorithm}:{h.hexdigest()}"


def finish(store: BlobStore, repo: Repository, upload: Upload, digest: str) -> int:
    """Verify the digest, move the content into place, then (only then) record and link it."""
    algorithm, _ = digests.parse(blobs.check_digest(digest))
    size = size_of(store, upload)
    actual = _actual_digest(store, upload, size, algorithm)
    if actual != digest:
        cancel(store, upload)
        raise RegistryError("DIGEST_INVALID", f"uploaded content has digest {actual}, not {digest}")
    store.upload_sync(upload.id)  # before the row's write lock is taken, not under it
    # The row first: content the collector is deleting is refused (BLOB_UNKNOWN) before we
    # touch storage; the session stays, its bytes untouched, until the client gives up on it.
    blobs.record(digest, size)
    if store.stat(digest) is None:
        store.upload_commit(upload.id, digest)
    else:
        store.upload_abort(upload.id)
    _hashes.drop(upload.id)
    # Content uploaded but never referenced by a manifest goes after the grace period. Noted
    # before the link counts toward a quota: every writer takes a candidate's row before a
    # scope's (see app.registry.quotas).
    gc.note([digest])
    blobs.link(repo, digest)
    db.session.delete(upload)
    db.session.flush()
    return size


def forget_refused(upload_id: str, digest: str, size: int) -> None:
    """After a quota refusal rolled `finish` back: the session's bytes already went to the
    store under their digest, so its row goes and the content is left to the collector."""
    db.session.execute(delete(Upload).where(Upload.id == upload_id))
    blobs.abandon([(digest, size)])


def ingest(
    store: BlobStore, repo: Repository, principal: Principal, chunks: Iterable[Chunk], digest: str
) -> int:
    """A whole blob in one call, as a monolithic push: one session, hashed as it streams, then
    verified and moved into place by `finish`. For content that arrives whole, such as a Python
    file from its upload form. Nothing of a failed append is left for anyone to resume."""
    upload = start(store, repo, principal)
    try:
        append(store, upload, chunks)
        # A refusal here too (content the collector is deleting) leaves no one to resume.
        return finish(store, repo, upload, digest)
    except BaseException:
        # The sweeper removes the session should this fail too (the backend may be down).
        with contextlib.suppress(Exception):
            cancel(store, upload)
        raise


def cancel(store: BlobStore, upload: Upload) -> None:
    _abort(store, upload.id)
    db.session.delete(upload)
    db.session.flush()


def _abort(store: BlobStore, upload_id: str) -> None:
    store.upload_abort(upload_id)
    _hashes.drop(upload_id)


def sweep_abandoned(store: BlobStore, older_than: timedelta) -> int:
    """Abort uploads with no activity for `older_than` (at least MIN_SWEEP_AGE): clients that
    vanished mid-push leave sessions (and, on S3, multipart uploads) behind, while an upload
    still sending requests is left to finish. Returns how many were removed."""
    cutoff = utcnow() - max(older_than, MIN_SWEEP_AGE)
    stale = db.session.execute(select(Upload.id).where(Upload.updated_at < cutoff)).scalars()
    swept = 0
    for upload_id in stale.all():
        # Still idle as it goes: a request that stamped the session since the read keeps it.
        idle = delete(Upload).where(Upload.id == upload_id, Upload.updated_at < cutoff)
        if db.session.execute(idle).rowcount == 1:
            _abort(store, upload_id)
            swept += 1
    return swept
