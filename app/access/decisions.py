"""Per-process memos of what authorization and credential checks read from the database, kept
while the policy stamp (`app.models.PolicyStamp`) is unchanged.

Every change to organisations, registries, memberships, grants, users, access tokens or a
registry's pull settings (signing and vulnerability policies, pull auditing) writes a fresh
stamp in its own transaction (database triggers), so a request that reads the stamp and finds
it unchanged may reuse a decision made under it, on any replica; one that finds it changed
decides again. A decision computed inside a transaction that changed the policy is kept
under that transaction's own stamp, which no committed state will ever carry if it rolls back.
Reading the stamp is one primary-key lookup, made once per transaction: the value is kept on the
database connection until the connection writes to a table a trigger watches (or deletes
anything: a cascade may reach one), ends its transaction or goes back to the pool. A registry
made private is private for the very next request everywhere.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar
from weakref import WeakKeyDictionary

from sqlalchemy import event, select, text
from sqlalchemy.engine import Connection, Engine

from app.caching import BoundedCache
from app.models import PolicyStamp, db
from app.models.base import flush_pending
from app.models.connection_scope import is_read, on_transaction_end
from app.models.policy_stamp import WATCHED_TABLES

log = logging.getLogger(__name__)

V = TypeVar("V")

_STAMP = select(PolicyStamp.stamp).where(PolicyStamp.id == 1)


_KEPT = "cargohold.policy_stamp"
_UNREAD = object()


def current_stamp() -> int | None:
    """The committed (or this transaction's own) policy stamp; None without the row (a
    database not yet upgraded) or without its triggers, when nothing may be reused."""
    # As a query through the session would: a pending change fires its trigger first.
    flush_pending()
    conn = db.session.connection()
    if not _triggers_present(conn):
        return None
    stamp = conn.info.get(_KEPT, _UNREAD)
    if stamp is _UNREAD:
        # On the connection, past the ORM: a column of one row needs no entity loading.
        stamp = conn.info[_KEPT] = conn.execute(_STAMP).scalar_one_or_none()
    return stamp  # type: ignore[return-value]


@on_transaction_end
def _forget(info: dict) -> None:
    info.pop(_KEPT, None)


@event.listens_for(Engine, "after_cursor_execute")
def _after_statement(conn, _cursor, statement: str, *_args) -> None:
    if may_move_stamp(statement):
        _forget(conn.info)


# The tables whose writes can move the stamp: the triggers' tables, and the stamp's own.
_STAMP_TABLES = frozenset((*WATCHED_TABLES, PolicyStamp.__tablename__))


def may_move_stamp(statement: str) -> bool:
    """True unless the statement is a read, or a plain INSERT or UPDATE of a table no stamp
    trigger watches: a DELETE may cascade to a watched table, an INSERT or UPDATE cannot (no
    foreign key cascades on update, and only watched tables have triggers: both checked by
    tests/test_policy_stamp.py). A manifest push's writes (tags, manifests, references, quota
    counts, audit events) keep the stamp read once."""
    if is_read(statement):
        return False
    words = statement.lstrip()[:256].split(None, 3)  # its head: a statement may be long
    verb = words[0].upper() if words else ""
    if verb == "INSERT" and len(words) > 2 and words[1].upper() == "INTO":
        table = words[2]
    elif verb == "UPDATE" and len(words) > 1 and words[1].upper() not in ("OR", "ONLY"):
        table = words[1]
    else:
        return True
    return table.split("(")[0].rsplit(".", 1)[-1].strip('"').lower() in _STAMP_TABLES


# Engine -> whether every watched table has its triggers, checked once per process and engine.
_TRIGGERS: WeakKeyDictionary[Engine, bool] = WeakKeyDictionary()
_SQLITE_TRIGGERS = text(
    "SELECT tbl_name FROM sqlite_master WHERE type = 'trigger' AND name LIKE '%\\_stamp\\_%' "
    "ESCAPE '\\' GROUP BY tbl_name HAVING count(*) = 3"
)
_POSTGRES_TRIGGERS = text(
    "SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
    "WHERE t.tgname LIKE '%policy_stamp'"
)


def _triggers_present(conn: Connection) -> bool:
    """A migration that rebuilds a watched table on SQLite (batch mode copies it) drops its
    triggers; without them a stamp would never change, so no decision is kept at all."""
    present = _TRIGGERS.get(conn.engine)
    if present is None:
        query = _POSTGRES_TRIGGERS if conn.dialect.name == "postgresql" else _SQLITE_TRIGGERS
        found = set(conn.execute(query).scalars())
        missing = sorted(set(WATCHED_TABLES) - found)
        if missing:
            log.warning("policy stamp triggers missing on %s: decisions are not kept", missing)
        present = _TRIGGERS[conn.engine] = not missing
    return present


class StampedMemo(Generic[V]):
    def __init__(self, size: int) -> None:
        self._entries: BoundedCache[Hashable, tuple[int, V]] = BoundedCache(size)

    def get(
        self, key: Hashable, compute: Callable[[], V], keep: Callable[[V], bool] | None = None
    ) -> V:
        """The value kept under the current stamp, else `compute()`, kept unless `keep` says
        no (a value that rests on rows this transaction wrote and the stamp does not watch)."""
        stamp = current_stamp()
        if stamp is None:
            return compute()
        hit = self._entries.get(key)
        if hit is not None and hit[0] == stamp:
            return hit[1]
        # Computed after the stamp was read: at least as new as the state the stamp names.
        value = compute()
        # Kept only if computing it wrote nothing a trigger watches (the stamp would have
        # moved): a value resting on this transaction's own writes could roll back with it.
        if current_stamp() == stamp and (keep is None or keep(value)):
            self._entries.put(key, (stamp, value))
        return value

    def clear(self) -> None:
        self._entries.clear()
