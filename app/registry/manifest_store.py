"""Manifests, tags and the referrers index, on top of blob links."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import and_, bindparam, delete, or_, select, update

from app import digests
from app.access import audit
from app.models import Blob, Manifest, ManifestReference, Repository, Tag, db
from app.models.base import execute_flushed, utcnow
from app.models.ordering import bytewise
from app.models.upsert import (
    insert_ignore,
    insert_ignore_many,
    insert_ignore_returning,
    upsert,
)
from app.registry import blobs, gc, immutability, manifests, quotas
from app.registry.errors import RegistryError
from app.registry.names import RepoName, check_tag
from app.storage import BlobStore


@dataclass(frozen=True, slots=True)
class Located:
    """A manifest found for a pull, as the columns its answer needs: the hottest read of a
    registry loads no entities (the ORM's loading of two was most of the read's cost)."""

    repository_id: int
    registry_id: int
    repository_name: str
    manifest_id: int
    digest: str
    media_type: str
    size: int
    subject_digest: str | None

    def entities(self) -> tuple[Repository, Manifest]:
        """The repository and manifest rows, for the pull policies that judge them."""
        # Either may have been deleted since the read (PostgreSQL reads what others commit).
        repo = db.session.get(Repository, self.repository_id)
        if repo is None:
            raise RegistryError("NAME_UNKNOWN", f"repository {self.repository_name!r} is not known")
        manifest = db.session.get(Manifest, self.manifest_id)
        if manifest is None:
            raise RegistryError("MANIFEST_UNKNOWN", f"manifest {self.digest!r} is not known")
        return repo, manifest


# That read by tag or by digest, one Core statement each, built once (building a statement
# costs as much as running it).
_R, _M, _T = Repository.__table__, Manifest.__table__, Tag.__table__
_COLUMNS = (
    _R.c.id,
    _R.c.registry_id,
    _R.c.name,
    _M.c.id,
    _M.c.digest,
    _M.c.media_type,
    _M.c.size,
    _M.c.subject_digest,
)
_BY_TAG = (
    select(*_COLUMNS)
    .select_from(
        _R.outerjoin(
            _T, and_(_T.c.repository_id == _R.c.id, _T.c.name == bindparam("reference"))
        ).outerjoin(_M, _M.c.id == _T.c.manifest_id)
    )
    .where(_R.c.name == bindparam("name"))
)
_BY_DIGEST = (
    select(*_COLUMNS)
    .select_from(
        _R.outerjoin(_M, and_(_M.c.repository_id == _R.c.id, _M.c.digest == bindparam("reference")))
    )
    .where(_R.c.name == bindparam("name"))
)


def locate(name: RepoName, reference: str) -> Located:
    """The manifest of a repository by tag or digest: NAME_UNKNOWN, MANIFEST_UNKNOWN."""
    by_digest = digests.is_digest(reference)
    query = _BY_DIGEST if by_digest else _BY_TAG
    row = db.session.execute(query, {"name": name.full, "reference": reference}).one_or_none()
    if row is None:
        raise RegistryError("NAME_UNKNOWN", f"repository {name.full!r} is not known")
    if by_digest:
        blobs.check_digest(reference)  # after the repository, as the two reads were before
    found = Located(*row)
    if found.manifest_id is None:
        raise RegistryError("MANIFEST_UNKNOWN", f"manifest {reference!r} is not known")
    return found


def find(repo: Repository, reference: str) -> Manifest:
    if digests.is_digest(reference):
        blobs.check_digest(reference)
        query = select(Manifest).where(
            Manifest.repository_id == repo.id, Manifest.digest == reference
        )
    else:
        query = (
            select(Manifest)
            .join(Tag, Tag.manifest_id == Manifest.id)
            .where(Tag.repository_id == repo.id, Tag.name == reference)
        )
    manifest = db.session.execute(query).scalar_one_or_none()
    if manifest is None:
        raise RegistryError("MANIFEST_UNKNOWN", f"manifest {reference!r} is not known")
    return manifest


def _check_references(repo: Repository, parsed: manifests.ParsedManifest) -> None:
    wanted = [d for d in parsed.blobs if not manifests.is_foreign(d)]
    present = blobs.linked_sizes(repo, [d.digest for d in wanted])
    for desc in wanted:
        if desc.digest not in present:
            raise RegistryError(
                "MANIFEST_BLOB_UNKNOWN", f"blob {desc.digest} is not in repository {repo.name}"
            )
        if present[desc.digest] != desc.size:
            raise RegistryError(
                "MANIFEST_INVALID",
                f"blob {desc.digest} has size {present[desc.digest]}, descriptor says {desc.size}",
            )
    if parsed.children:
        child_digests = {d.digest for d in parsed.children}
        found = set(
            db.session.execute(
                select(Manifest.digest).where(
                    Manifest.repository_id == repo.id, Manifest.digest.in_(child_digests)
                )
            ).scalars()
        )
        for desc in parsed.children:
            if desc.digest not in found:
                raise RegistryError(
                    "MANIFEST_BLOB_UNKNOWN",
                    f"manifest {desc.digest} is not in repository {repo.name}",
                )


def _record_references(manifest_id: int, parsed: manifests.ParsedManifest) -> None:
    """What this manifest keeps alive, for the collector's indexed "still referenced?"."""
    named = {d.digest for d in parsed.blobs if not manifests.is_foreign(d)}
    named |= {d.digest for d in parsed.children}
    if parsed.subject is not None:
        named.add(parsed.subject.digest)
    rows = [{"manifest_id": manifest_id, "digest": digest} for digest in sorted(named)]
    insert_ignore_many(ManifestReference, ["manifest_id", "digest"], rows)


def index_references(store: BlobStore, batch: int = 500) -> int:
    """Write `manifest_references` for manifests stored before it existed (the 0006_lifecycle
    upgrade); returns how many manifests it indexed. Idempotent."""
    indexed = 0
    last = 0
    while True:
        rows = list(
            db.session.execute(
                select(Manifest).where(Manifest.id > last).order_by(Manifest.id).limit(batch)
            ).scalars()
        )
        if not rows:
            return indexed
        for manifest in rows:
            with store.open(manifest.digest) as f:
                body = f.read(manifest.size + 1)
            _record_references(manifest.id, manifests.parse(body, manifest.media_type))
            indexed += 1
        last = rows[-1].id
        db.session.flush()


def references_of(manifest: Manifest) -> list[str]:
    return list(
        db.session.execute(
            select(ManifestReference.digest).where(ManifestReference.manifest_id == manifest.id)
        ).scalars()
    )


def put(
    store: BlobStore,
    repo: Repository,
    reference: str,
    body: bytes,
    content_type: str | None,
    extra_tags: Iterable[str] = (),
) -> tuple[str, manifests.ParsedManifest]:
    """Store and tag a manifest; returns its digest and what it says."""
    parsed = manifests.parse(body, content_type)
    tags = [check_tag(t) for t in extra_tags]
    if digests.is_digest(reference):
        algorithm, _ = digests.parse(blobs.check_digest(reference))
        digest = digests.of_bytes(body, algorithm)
        if digest != reference:
            raise RegistryError("DIGEST_INVALID", f"manifest digest is {digest}, not {reference}")
    else:
        tags.insert(0, check_tag(reference))
        digest = parsed.digest
    # A manifest the repository already holds (a re-push, a new tag on it) is only tagged:
    # its content, blob row and references are in place.
    manifest_id = _held(repo, digest)
    if manifest_id is None:
        manifest_id = _store_new(store, repo, digest, body, parsed)
    tags = sorted(set(tags))
    before = _tagged(repo, tags)
    # One order for every writer: two pushes naming the same tags lock their rows alike
    # instead of deadlocking on PostgreSQL.
    for i, tag in enumerate(tags):
        if i > 0:
            # The read above is the first tag's, made just before its write. A later tag is
            # read again after the writes before it (on PostgreSQL one may have waited for
            # another push), so that its audit names what it pointed at just before.
            before[tag] = _tag_now(repo, tag)
        _point(repo, tag, manifest_id, before)
    _audit_push(repo, parsed, digest, tags, before)
    return digest, parsed


def _point(repo: Repository, tag: str, manifest_id: int, before: dict) -> None:
    """Point a tag at the manifest, unless that moves a protected tag. A tag absent when read is
    only inserted if still absent: on PostgreSQL another push may have created it since (its
    insert waited for that push's commit), and the tag is then judged, and audited, as a move."""
    row = {"repository_id": repo.id, "name": tag, "manifest_id": manifest_id}
    row |= {"updated_at": utcnow(), "pushed_by": pusher()}
    current = before.get(tag, _UNTAGGED)
    if current[0] is None:
        if insert_ignore(Tag, ["repository_id", "name"], **row) == 1:
            return
        current = before[tag] = _tag_now(repo, tag)
    immutability.guard_move(repo, tag, manifest_id, current[0])
    upsert(Tag, ["repository_id", "name"], ["manifest_id", "updated_at", "pushed_by"], **row)


def _held(repo: Repository, digest: str) -> int | None:
    """The id of the repository's row for this manifest, kept from a concurrent delete until
    the transaction ends; None when the repository has none, or when the manifest or anything
    it names is being deleted. The collector never marks content a manifest still names; a
    state it did not make is left to the full path, which refuses it (MANIFEST_BLOB_UNKNOWN)."""
    params = {"held_repository": repo.id, "held_digest": digest}
    if db.session.get_bind().dialect.name == "postgresql":
        return execute_flushed(_HELD_SHARED, params).scalar_one_or_none()
    # SQLite: the UPDATE takes the database's one write lock before its condition is read, so
    # the condition sees every committed delete and mark.
    return execute_flushed(_TOUCH_HELD, params).scalar_one_or_none()


def _dead_content(manifest_id, digest):
    """A blob of the manifest, or named by it, that is not live (correlated to the manifest
    row of the query it is used in)."""
    named = (
        select(ManifestReference.digest)
        .where(ManifestReference.manifest_id == manifest_id)
        .correlate_except(ManifestReference)
    )
    return (
        select(Blob.digest)
        .where(Blob.state != gc.LIVE, or_(Blob.digest == digest, Blob.digest.in_(named)))
        .correlate_except(Blob)
    )


# Built once, as the reads above: a push of a manifest the repository holds runs these.
_THIS_MANIFEST = (
    _M.c.repository_id == bindparam("held_repository"),
    _M.c.digest == bindparam("held_digest"),
)
_LIVE_CONTENT = ~_dead_content(_M.c.id, _M.c.digest).exists()
# Core statements of the table: the ORM's would rebuild and re-key them on every push.
_TOUCH_HELD = (
    update(_M).where(*_THIS_MANIFEST, _LIVE_CONTENT).values(digest=_M.c.digest).returning(_M.c.id)
)
_HELD_SHARED = (
    select(_M.c.id).where(*_THIS_MANIFEST, _LIVE_CONTENT).with_for_update(read=True, of=_M)
)
_MANIFEST_ID = select(_M.c.id).where(*_THIS_MANIFEST)


def _store_new(
    store: BlobStore, repo: Repository, digest: str, body: bytes, parsed: manifests.ParsedManifest
) -> int:
    """The new manifest's row, object and references; returns the row's id."""
    # The manifest's own row first: it is this transaction's first write (SQLite's write lock),
    # so the checks below see every mark the collector has committed (see app.registry.gc).
    blobs.record(digest, len(body))
    _check_references(repo, parsed)

    manifest_id = insert_ignore_returning(
        Manifest,
        ["repository_id", "digest"],
        "id",
        repository_id=repo.id,
        digest=digest,
        media_type=parsed.media_type,
        size=len(body),
        artifact_type=parsed.artifact_type,
        subject_digest=parsed.subject.digest if parsed.subject else None,
        annotations=parsed.annotations,
        created_at=utcnow(),
        pushed_by=pusher(),
    )
    if manifest_id is not None:
        # Refused past a quota before the object is written: a refusal leaves nothing behind.
        quotas.charge(repo, digest, len(body))
    # The row commits with the transaction, after the object is in the store.
    store.put(digest, body)
    if manifest_id is None:  # another push stored it first: its row
        params = {"held_repository": repo.id, "held_digest": digest}
        manifest_id = db.session.execute(_MANIFEST_ID, params).scalar_one_or_none()
    if manifest_id is None:  # deleted by another since (PostgreSQL)
        raise RegistryError("MANIFEST_UNKNOWN", f"manifest {digest!r} is not known")
    _record_references(manifest_id, parsed)
    return manifest_id


def pusher() -> str:
    """The name a pushed manifest or moved tag keeps as who pushed it."""
    actor = audit.current()
    return (actor.name or actor.kind)[:64]


_TAGGED = (
    select(_T.c.name, _T.c.manifest_id, _M.c.digest)
    .join(_M, _M.c.id == _T.c.manifest_id)
    .where(_T.c.repository_id == bindparam("repository_id"))
    .where(_T.c.name.in_(bindparam("tags", expanding=True)))
)
_UNTAGGED = (None, None)


def _tagged(repo: Repository, tags: list[str]) -> dict[str, tuple[int, str]]:
    """Where the tags point now: tag -> (manifest id, digest)."""
    if not tags:
        return {}
    rows = db.session.execute(_TAGGED, {"repository_id": repo.id, "tags": tags})
    return {name: (manifest_id, digest) for name, manifest_id, digest in rows}


def _tag_now(repo: Repository, tag: str) -> tuple[int, str] | tuple[None, None]:
    """Where one tag points now: (manifest id, digest), or _UNTAGGED."""
    return _tagged(repo, [tag]).get(tag, _UNTAGGED)


def _audit_push(repo, parsed, digest: str, tags: list[str], before: dict) -> None:
    details = {"media_type": parsed.media_type, "size": parsed.size, "tags": tags}
    if parsed.artifact_type:
        details["artifact_type"] = parsed.artifact_type
    if parsed.subject is not None:
        details["subject"] = parsed.subject.digest
    events = [("manifest.push", digest, details)]
    for tag in tags:
        old = before.get(tag, _UNTAGGED)[1]
        if old is None:
            events.append(("tag.create", tag, {"digest": digest}))
        elif old != digest:
            events.append(("tag.move", tag, {"from": old, "to": digest}))
    audit.on_repository_many(repo, events)


def delete_reference(repo: Repository, reference: str) -> None:
    """A digest removes the manifest, its tags and its referrers entry; a tag removes the tag."""
    manifest = find(repo, reference)
    if digests.is_digest(reference):
        names = db.session.execute(select(Tag.name).where(Tag.manifest_id == manifest.id))
        immutability.guard_delete(repo, list(names.scalars()))
    else:
        immutability.guard_delete(repo, [reference])
    # The manifest and everything it named may now be garbage; the collector decides later.
    gc.note([manifest.digest, *(references_of(manifest) if digests.is_digest(reference) else [])])
    if digests.is_digest(reference):
        tags = sorted(
            db.session.execute(select(Tag.name).where(Tag.manifest_id == manifest.id)).scalars()
        )
        db.session.execute(delete(Tag).where(Tag.manifest_id == manifest.id))
        db.session.delete(manifest)
        audit.on_repository("manifest.delete", repo, manifest.digest, {"tags": tags})
        quotas.release([repo.registry_id], manifest.digest)
    else:
        db.session.execute(delete(Tag).where(Tag.repository_id == repo.id, Tag.name == reference))
        audit.on_repository("tag.delete", repo, reference, {"digest": manifest.digest})
    db.session.flush()


def tag_names(repo: Repository, last: str | None, limit: int | None) -> list[str]:
    """A page of the repository's tag names in byte order. A listing may hold 100,000 of them:
    they are taken from the driver's rows as they come, since building SQLAlchemy's row objects
    for them costs more than the query (13 ms against 5 ms for 10,000 tags)."""
    name = bytewise(_T.c.name)
    query = select(_T.c.name).where(_T.c.repository_id == repo.id).order_by(name)
    if last:
        query = query.where(name > last)
    if limit is not None:
        query = query.limit(limit)
    result = db.session.connection().execute(query)
    try:
        return [name for (name,) in result.cursor.fetchall()]
    finally:
        result.close()


def referrer_manifests(
    repo: Repository,
    subject: str,
    artifact_types: Iterable[str] | None = None,
    limit: int | None = None,
) -> list[Manifest]:
    """The repository's manifests whose subject is `subject`, oldest first."""
    query = select(Manifest).where(
        Manifest.repository_id == repo.id, Manifest.subject_digest == subject
    )
    if artifact_types is not None:
        query = query.where(Manifest.artifact_type.in_(list(artifact_types)))
    return list(db.session.execute(query.order_by(Manifest.id).limit(limit)).scalars())


def referrers(repo: Repository, subject: str, artifact_type: str | None) -> list[dict]:
    out = []
    for m in referrer_manifests(repo, subject, [artifact_type] if artifact_type else None):
        desc = manifests.Descriptor(
            media_type=m.media_type,
            digest=m.digest,
            size=m.size,
            artifact_type=m.artifact_type,
            annotations=m.annotations,
        )
        out.append(desc.as_json())
    return out
