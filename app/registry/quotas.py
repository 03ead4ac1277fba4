"""Storage quotas per organisation and per registry.

Usage is kept in the database as it changes, never summed at check time: every blob link and
every manifest row of a scope's repositories holds one reference on a `quota_contents` row
(scope, digest), and a scope's `used_bytes` grows by a digest's size when its first reference
arrives and shrinks when its last one goes. So a layer shared by ten repositories of a registry
counts once for the registry, and content in two registries of an organisation once for it.
Whoever writes or deletes a link or a manifest row calls `charge` or `release` beside it.

A charge that takes a scope past its limit raises `QuotaExceeded` (OCI `DENIED`), and the
transaction is rolled back. Counters are updated in place (`used_bytes = used_bytes + n`): on
PostgreSQL the update holds the scope's row until the transaction commits, so concurrent pushes
into one scope are admitted one after another against committed figures and the limit is never
overshot; SQLite has a single writer. Content already held by the scope adds nothing and is
never refused, so pushing again what is stored always works, even over quota.

Lock order, so no two writers wait for each other: a garbage-collection candidate's row, then
blob rows, then a digest's `quota_contents` rows, then the scopes' rows, registry before
organisation (a charge takes both content rows in one statement, then the scopes'; a release
goes scope by scope, each content row before its scope's row: a charge and a release of one
digest meet first at its registry content row). The collector, which holds blob rows while it
drops links, takes scope rows only if no push holds them (`lock_scopes`), and otherwise looks
at the candidate again shortly.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import bindparam, delete, event, func, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import Executable

from app.access import audit
from app.access.decisions import StampedMemo
from app.errors import Invalid
from app.models import (
    Blob,
    BlobLink,
    Manifest,
    Organisation,
    QuotaContent,
    QuotaScope,
    Registry,
    Repository,
    db,
)
from app.models.base import execute_flushed, utcnow
from app.models.upsert import built_insert, insert_ignore
from app.registry.errors import RegistryError

ORG = "organisation"
REGISTRY = "registry"


@dataclass(frozen=True)
class Usage:
    kind: str  # ORG or REGISTRY
    name: str  # "acme" or "acme/main"
    limit_bytes: int | None
    used_bytes: int

    def as_json(self) -> dict:
        available = None
        if self.limit_bytes is not None:
            available = max(self.limit_bytes - self.used_bytes, 0)
        return {
            "scope": self.kind,
            "name": self.name,
            "limit_bytes": self.limit_bytes,
            "used_bytes": self.used_bytes,
            "available_bytes": available,
        }


class QuotaExceeded(RegistryError):
    def __init__(self, usage: Usage, digest: str, size: int):
        super().__init__(
            "DENIED",
            f"storage quota exceeded for {usage.kind} {usage.name}: {usage.used_bytes} of "
            f"{usage.limit_bytes} bytes used; {digest} needs {size} more",
        )
        self.usage, self.digest, self.size = usage, digest, size

    def body(self) -> dict:
        # Clients (podman, skopeo, docker) print an error's message, not its detail: the
        # figures go in both.
        body = super().body()
        body["errors"][0]["message"] = self.detail
        return body


def _defaults(kind: str) -> int | None:
    settings = current_app.extensions["cargohold.settings"]
    if kind == ORG:
        return settings.default_org_quota_bytes
    return settings.default_registry_quota_bytes


def _column(kind: str):
    return QuotaScope.organisation_id if kind == ORG else QuotaScope.registry_id


def ensure_scope(kind: str, owner_id: int) -> QuotaScope:
    """The scope's row, created (with the configured default limit, nothing used) on first
    sight: a scope is opened when its organisation or registry is created."""
    column = _column(kind)
    query = select(QuotaScope).where(column == owner_id)
    row = db.session.execute(query).scalar_one_or_none()
    if row is not None:
        return row
    db.session.info[SCOPES_OPENED] = True
    insert_ignore(
        QuotaScope,
        [column.key],
        **{column.key: owner_id},
        limit_bytes=_defaults(kind),
        used_bytes=0,
        updated_at=utcnow(),
    )
    return db.session.execute(query).scalar_one()


# registry id -> its scope ids, kept while the policy stamp is unchanged: scope rows go only
# with their registry or organisation, whose changes move the stamp. Never kept from a
# transaction that opened a scope (its rows, and their ids, could still roll back).
_SCOPES: StampedMemo[list[tuple[int, str, int]]] = StampedMemo(4096)
SCOPES_OPENED = "cargohold.quota_scopes_opened"


@event.listens_for(Session, "after_commit")
@event.listens_for(Session, "after_rollback")
def _transaction_ended(session: Session) -> None:
    session.info.pop(SCOPES_OPENED, None)


def _scope_ids(registry_id: int) -> list[tuple[int, str, int]]:
    """(scope id, kind, owner id): the registry's scope first, then its organisation's, one
    order for every writer so their row locks never cross."""

    def read() -> list[tuple[int, str, int]]:
        org_id = db.session.execute(
            select(Registry.organisation_id).where(Registry.id == registry_id)
        ).scalar_one()
        return [
            (ensure_scope(REGISTRY, registry_id).id, REGISTRY, registry_id),
            (ensure_scope(ORG, org_id).id, ORG, org_id),
        ]

    return _SCOPES.get(registry_id, read, keep=lambda _: SCOPES_OPENED not in db.session.info)


def _name(kind: str, owner_id: int) -> str:
    if kind == ORG:
        return db.session.execute(
            select(Organisation.name).where(Organisation.id == owner_id)
        ).scalar_one()
    org, reg = db.session.execute(
        select(Organisation.name, Registry.name)
        .join(Registry, Registry.organisation_id == Organisation.id)
        .where(Registry.id == owner_id)
    ).one()
    return f"{org}/{reg}"


def charge(repo: Repository, digest: str, size: int) -> None:
    """A link or manifest row naming `digest` was just written in `repo`: count it, and refuse
    it (QuotaExceeded) when it is new to a scope that it takes past its limit."""
    scopes = _scope_ids(repo.registry_id)
    params = {"q_digest": digest, "q_size": size}
    params.update((f"q_scope{i}", scope_id) for i, (scope_id, _, _) in enumerate(scopes))
    refs = dict(execute_flushed(_counted(len(scopes)), params).all())
    for scope_id, kind, owner_id in scopes:
        if refs[scope_id] != 1:
            continue  # the scope holds it already
        grown = {"q_scope": scope_id, "q_size": size, "q_now": utcnow()}
        used, limit = db.session.execute(_GROWN, grown).one()
        if limit is not None and used > limit:
            usage = Usage(kind, _name(kind, owner_id), limit, used - size)
            raise QuotaExceeded(usage, digest, size)


# The statements of a charge, built once on the tables (Core, as upsert.py's): every blob
# link and manifest row is charged, and building a statement costs as much as running it.
_SCOPE_ROWS, _CONTENT_ROWS = QuotaScope.__table__, QuotaContent.__table__
_GROWN = (
    update(_SCOPE_ROWS)
    .where(_SCOPE_ROWS.c.id == bindparam("q_scope"))
    .values(
        used_bytes=_SCOPE_ROWS.c.used_bytes + bindparam("q_size"), updated_at=bindparam("q_now")
    )
    .returning(_SCOPE_ROWS.c.used_bytes, _SCOPE_ROWS.c.limit_bytes)
)


def _counted(scopes: int) -> Executable:
    """One more reference to a digest in each of `scopes` scopes, in one statement, their rows
    in the order given (the scopes' lock order); (scope id, new count) for each."""

    def build(insert) -> Executable:
        row = {"digest": bindparam("q_digest"), "refs": 1, "size": bindparam("q_size")}
        rows = [{"scope_id": bindparam(f"q_scope{i}"), **row} for i in range(scopes)]
        return (
            insert(_CONTENT_ROWS)
            .values(rows)
            .on_conflict_do_update(
                index_elements=["scope_id", "digest"], set_={"refs": _CONTENT_ROWS.c.refs + 1}
            )
            .returning(_CONTENT_ROWS.c.scope_id, _CONTENT_ROWS.c.refs)
        )

    return built_insert(("quota charge", scopes), build)


def release(registry_ids: Iterable[int], digest: str) -> None:
    """One link or manifest row naming `digest` went, in each of these registries (repeat a
    registry once per row)."""
    for registry_id in registry_ids:
        for scope_id, _kind, _owner in _scope_ids(registry_id):
            row = db.session.execute(
                update(QuotaContent)
                .where(QuotaContent.scope_id == scope_id, QuotaContent.digest == digest)
                .values(refs=QuotaContent.refs - 1)
                .returning(QuotaContent.refs, QuotaContent.size)
                .execution_options(synchronize_session=False)
            ).first()
            if row is None or row[0] > 0:
                continue  # still held (or never counted: `flask quota recount` mends drift)
            db.session.execute(
                delete(QuotaContent).where(
                    QuotaContent.scope_id == scope_id,
                    QuotaContent.digest == digest,
                    QuotaContent.refs <= 0,
                )
            )
            db.session.execute(
                update(QuotaScope)
                .where(QuotaScope.id == scope_id)
                .values(used_bytes=QuotaScope.used_bytes - row[1], updated_at=utcnow())
                .execution_options(synchronize_session=False)
            )


def lock_scopes(repository_ids: Iterable[int]) -> bool:
    """Lock the scopes of these repositories' registries for a release, without waiting: False
    when a push holds one (PostgreSQL; SQLite's single writer never has to wait here)."""
    if db.session.get_bind().dialect.name != "postgresql":
        return True
    registries = select(Repository.registry_id).where(Repository.id.in_(set(repository_ids)))
    orgs = select(Registry.organisation_id).where(Registry.id.in_(registries))
    wanted = (QuotaScope.registry_id.in_(registries)) | (QuotaScope.organisation_id.in_(orgs))
    expected = db.session.execute(select(func.count(QuotaScope.id)).where(wanted)).scalar_one()
    locked = db.session.execute(
        select(QuotaScope.id)
        .where(wanted)
        .order_by(QuotaScope.id)
        .with_for_update(skip_locked=True)
    ).all()
    return len(locked) == expected


def release_in_repositories(repository_ids: Iterable[int], digest: str) -> None:
    """`release` for rows deleted from these repositories (one id per row)."""
    ids = list(repository_ids)
    if not ids:
        return
    registry_of = dict(
        db.session.execute(
            select(Repository.id, Repository.registry_id).where(Repository.id.in_(set(ids)))
        ).all()
    )
    release([registry_of[i] for i in ids], digest)


# ---- reading and setting ----------------------------------------------------------------------


def usage(kind: str, owner_id: int) -> Usage:
    row = ensure_scope(kind, owner_id)
    return Usage(kind, _name(kind, owner_id), row.limit_bytes, row.used_bytes)


def set_limit(kind: str, owner_id: int, limit: int | None) -> Usage:
    """Set (None: remove) a scope's limit. A limit below what the scope already uses is
    refused, as Harbor does: nothing stored is taken away by a quota."""
    row = ensure_scope(kind, owner_id)
    query = select(QuotaScope).where(QuotaScope.id == row.id)
    if db.session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    row = db.session.execute(query.execution_options(populate_existing=True)).scalar_one()
    if limit is not None and limit < row.used_bytes:
        raise Invalid(
            f"a limit of {limit} bytes is below the {row.used_bytes} bytes "
            f"{_name(kind, owner_id)} already uses"
        )
    previous, row.limit_bytes = row.limit_bytes, limit
    row.updated_at = utcnow()
    db.session.flush()
    name = _name(kind, owner_id)
    org, _, registry = name.partition("/")
    audit.record(
        "quota.set",
        org=org,
        registry=registry or None,
        details={"limit_bytes": limit, "previous_limit_bytes": previous},
    )
    return Usage(kind, name, row.limit_bytes, row.used_bytes)


# ---- recount ---------------------------------------------------------------------------------


def _held(registry_ids):
    """(digest, rows) the registries' repositories hold: links and manifests alike."""
    links = (
        select(BlobLink.digest.label("digest"))
        .join(Repository, Repository.id == BlobLink.repository_id)
        .where(Repository.registry_id.in_(registry_ids))
    )
    manifests = (
        select(Manifest.digest.label("digest"))
        .join(Repository, Repository.id == Manifest.repository_id)
        .where(Repository.registry_id.in_(registry_ids))
    )
    held = links.union_all(manifests).subquery()
    return (
        select(held.c.digest, func.count(), func.max(Blob.size))
        .join(Blob, Blob.digest == held.c.digest)
        .group_by(held.c.digest)
    )


def recount_scope(kind: str, owner_id: int) -> tuple[int, int]:
    """Rebuild one scope's contents and usage from the links and manifests it holds; returns
    (usage before, usage after). For drift, which nothing should cause."""
    row = ensure_scope(kind, owner_id)
    query = select(QuotaScope).where(QuotaScope.id == row.id)
    if db.session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    row = db.session.execute(query.execution_options(populate_existing=True)).scalar_one()
    before = row.used_bytes
    if kind == ORG:
        registry_ids = select(Registry.id).where(Registry.organisation_id == owner_id)
    else:
        registry_ids = select(Registry.id).where(Registry.id == owner_id)
    counted = db.session.execute(_held(registry_ids)).all()
    db.session.execute(delete(QuotaContent).where(QuotaContent.scope_id == row.id))
    for digest, refs, size in counted:
        db.session.add(QuotaContent(scope_id=row.id, digest=digest, refs=refs, size=size))
    row.used_bytes = sum(size for _, _, size in counted)
    row.updated_at = utcnow()
    db.session.flush()
    return before, row.used_bytes


def all_scopes() -> list[tuple[str, int]]:
    orgs = db.session.execute(select(Organisation.id).order_by(Organisation.id)).scalars()
    regs = db.session.execute(select(Registry.id).order_by(Registry.id)).scalars()
    return [(REGISTRY, r) for r in regs] + [(ORG, o) for o in orgs]
