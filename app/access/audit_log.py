"""Reading the audit log: filters, keyset pages, the export, and the retention purge.

Pages go newest first by id and continue below the last id seen, never by offset: events
inserted meanwhile get higher ids and cannot shift a page a reader is walking through.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select

from app.errors import Invalid
from app.limits import InputRejected, parse_count
from app.models import AuditEvent, db
from app.models.base import utcnow

MAX_PAGE = 500
DEFAULT_PAGE = 100
RESULTS = ("ok", "denied", "failed")
# The export reads this many rows per query.
EXPORT_BATCH = 1000
# A purge deletes at most this many rows per statement, so it never holds a long lock.
PURGE_BATCH = 5000


@dataclass(frozen=True)
class Filters:
    org: str | None = None  # None with site=True: every organisation and none
    site_only: bool = False  # events of no organisation (logins, personal tokens, the collector)
    action: str | None = None  # exact, or a prefix ending in "." or "*"
    actor: str | None = None
    registry: str | None = None
    repository: str | None = None
    result: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def parse_time(value: str, name: str) -> datetime:
    """ISO 8601, with or without a zone (UTC when none); stored times are naive UTC."""
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        if parsed.tzinfo is not None:
            # Year 1 east of UTC or year 9999 west of it has no UTC time.
            parsed = (parsed - parsed.utcoffset()).replace(tzinfo=None)
    except (ValueError, OverflowError):
        raise Invalid(f"{name} must be an ISO 8601 time, e.g. 2026-11-25T17:00:00Z") from None
    return parsed


def _text(args, name: str, size: int) -> str | None:
    value = args.get(name)
    if value is None or value == "":
        return None
    if len(value) > size:
        raise Invalid(f"{name} is at most {size} characters")
    if any(ord(c) < 32 or c == "\x7f" for c in value):
        # No stored name holds one, and PostgreSQL text cannot hold a NUL.
        raise Invalid(f"{name} cannot hold control characters")
    return value


def filters_from(args, org: str | None = None, allow_org: bool = False) -> Filters:
    """Filters from query arguments (a mapping of strings); Invalid names the bad one."""
    result = _text(args, "result", 16)
    if result is not None and result not in RESULTS:
        raise Invalid(f"result must be one of {', '.join(RESULTS)}")
    since = parse_time(args["since"], "since") if args.get("since") else None
    until = parse_time(args["until"], "until") if args.get("until") else None
    if since and until and since > until:
        raise Invalid("since must not be after until")
    site_only = False
    if allow_org and (wanted := _text(args, "org", 64)) is not None:
        # "-": events of no organisation.
        site_only, org = wanted == "-", None if wanted == "-" else wanted
    return Filters(
        org=org,
        site_only=site_only,
        action=_text(args, "action", 64),
        actor=_text(args, "actor", 64),
        registry=_text(args, "registry", 64),
        repository=_text(args, "repository", 255),
        result=result,
        since=since,
        until=until,
    )


def page_size(value: str | None) -> int:
    if value is None or value == "":
        return DEFAULT_PAGE
    # ASCII digits only: str.isdigit() takes "²", which int() refuses.
    try:
        size = parse_count(value, "limit", MAX_PAGE)
    except InputRejected:
        size = 0
    if size < 1:
        raise Invalid(f"limit must be a whole number from 1 to {MAX_PAGE}")
    return size


def cursor(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    try:
        return parse_count(value, "before")
    except InputRejected:
        raise Invalid("before must be the id of an event (the next_before of a page)") from None


def _like_prefix(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _query(f: Filters):
    q = select(AuditEvent)
    if f.org is not None:
        q = q.where(AuditEvent.org == f.org)
    elif f.site_only:
        q = q.where(AuditEvent.org.is_(None))
    if f.action:
        if f.action.endswith((".", "*")):
            prefix = _like_prefix(f.action.rstrip("*"))
            q = q.where(AuditEvent.action.like(prefix, escape="\\"))
        else:
            q = q.where(AuditEvent.action == f.action)
    if f.actor:
        q = q.where(AuditEvent.actor_name == f.actor)
    if f.registry:
        q = q.where(AuditEvent.registry_name == f.registry)
    if f.repository:
        q = q.where(AuditEvent.repository == f.repository)
    if f.result:
        q = q.where(AuditEvent.result == f.result)
    if f.since:
        q = q.where(AuditEvent.at >= f.since)
    if f.until:
        q = q.where(AuditEvent.at <= f.until)
    return q


def page(f: Filters, limit: int, before: int | None) -> tuple[list[AuditEvent], int | None]:
    """Up to `limit` events below id `before`, newest first, and the cursor for the next page
    (None on the last)."""
    q = _query(f)
    if before is not None:
        q = q.where(AuditEvent.id < before)
    rows = list(db.session.execute(q.order_by(AuditEvent.id.desc()).limit(limit + 1)).scalars())
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, rows[-1].id if more and rows else None


def export(f: Filters) -> Iterator[AuditEvent]:
    """Every matching event, newest first, a batch per query: memory stays flat."""
    before = None
    while True:
        rows, before = page(f, EXPORT_BATCH, before)
        yield from rows
        db.session.expunge_all()
        if before is None:
            return


def as_json(e: AuditEvent) -> dict:
    return {
        "id": e.id,
        "at": e.at.isoformat() + "Z",
        "action": e.action,
        "result": e.result,
        "actor": {
            "kind": e.actor_kind,
            "name": e.actor_name,
            "id": e.actor_id,
            "token_id": e.token_id,
            "ci": e.ci,
            "address": e.address,
        },
        "org": e.org,
        "registry": e.registry_name,
        "repository": e.repository,
        "reference": e.reference,
        "details": e.details,
    }


def purge(days: int, now: datetime | None = None) -> int:
    """Delete events older than `days` (0: keep for ever); the caller's unit of work commits.
    Returns how many went."""
    if days <= 0:
        return 0
    cutoff = (now or utcnow()) - timedelta(days=days)
    removed = 0
    while True:
        ids = select(AuditEvent.id).where(AuditEvent.at < cutoff).limit(PURGE_BATCH)
        gone = db.session.execute(delete(AuditEvent).where(AuditEvent.id.in_(ids))).rowcount
        removed += gone
        if gone < PURGE_BATCH:
            return removed
