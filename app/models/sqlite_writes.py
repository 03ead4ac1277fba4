"""Writers of one SQLite database queue in the process before they queue in SQLite.

SQLite has one writer at a time. A connection that finds the write lock taken sleeps in its busy
handler (1, 2, 5, 10 ... 100 ms, not woken when the lock is freed), so with the threads of a
worker all pushing, most of a write transaction's time was sleeping past the moment it could
have run. Here the first write statement of a transaction first takes a lock shared by the
process's connections to that database, held until the transaction ends: threads of one worker
hand the write lock to each other at once, and only the workers contend in SQLite.

An optimisation only: SQLite's own locking keeps the data right. A thread that cannot get the
process lock in time (it already holds it through another connection, say) goes on without it
and meets SQLite's busy handler as before.
"""

from __future__ import annotations

import threading

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import Pool

_HELD = "cargohold.sqlite_write_lock"
WAIT_SECONDS = 30.0  # as long as SQLite's own busy timeout

_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def _lock_for(conn: Connection) -> threading.Lock:
    key = str(conn.engine.url)
    lock = _locks.get(key)
    if lock is None:
        with _locks_guard:
            lock = _locks.setdefault(key, threading.Lock())
    return lock


@event.listens_for(Engine, "before_cursor_execute")
def _before_statement(conn: Connection, _cursor, statement: str, *_args) -> None:
    if conn.dialect.name != "sqlite" or _HELD in conn.info:
        return
    if statement.lstrip()[:6].upper() in ("SELECT", "PRAGMA"):
        return
    lock = _lock_for(conn)
    if lock.acquire(timeout=WAIT_SECONDS):
        conn.info[_HELD] = lock


def _release(info: dict) -> None:
    lock = info.pop(_HELD, None)
    if lock is not None:
        lock.release()


@event.listens_for(Engine, "commit")
@event.listens_for(Engine, "rollback")
def _transaction_ended(conn: Connection) -> None:
    _release(conn.info)


@event.listens_for(Pool, "checkin")
def _returned(_dbapi_connection, record) -> None:
    # A connection returned with its transaction still open is rolled back by the pool, which
    # fires no Connection event.
    if record is not None:
        _release(record.info)


@event.listens_for(Pool, "reset")
def _reset(_dbapi_connection, record, _reset_state) -> None:
    if record is not None:
        _release(record.info)
