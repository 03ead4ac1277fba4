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

from app.models.connection_scope import is_read, on_transaction_end

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
    if conn.dialect.name != "sqlite" or _HELD in conn.info or is_read(statement):
        return
    lock = _lock_for(conn)
    if lock.acquire(timeout=WAIT_SECONDS):
        conn.info[_HELD] = lock


@on_transaction_end
def _release(info: dict) -> None:
    lock = info.pop(_HELD, None)
    if lock is not None:
        lock.release()
