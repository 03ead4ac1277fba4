"""Writers of one SQLite database queue on locks that wake them, not in SQLite's busy handler.

SQLite has one writer at a time. A connection that finds the write lock taken sleeps in its busy
handler (1, 2, 5, 10 ... 100 ms, not woken when the lock is freed), so with several threads and
workers all pushing, most of a write transaction's time was sleeping past the moment it could
have run. Here the first write statement of a transaction first takes two locks, held until the
transaction ends: one shared by the process's connections to that database (its threads hand the
write lock to each other at once), then an exclusive `flock` on a file beside the database
(`app/models/writer_file.py`: the workers, and any other process of this code on the host, do
the same).

An optimisation only: SQLite's own locking keeps the data right. A thread that cannot get a lock
within 30 s (SQLite's own busy timeout), a database that is not a file, or a lock file that
cannot be used: the writer goes on without the lock and meets SQLite's busy handler as before.
"""

from __future__ import annotations

import logging
import os
import threading

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from app.models.connection_scope import is_read, on_transaction_end
from app.models.writer_file import WriterFile, is_passing

log = logging.getLogger(__name__)

_HELD = "cargohold.sqlite_write_lock"  # the process lock, or None: tried and not got
_FILE_HELD = "cargohold.sqlite_write_file"
WAIT_SECONDS = 30.0
LOCK_SUFFIX = "-writer"

_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()
# One per process and database: a descriptor inherited across fork shares its lock with the
# parent, so each process opens its own. None: the file cannot be used.
_files: dict[tuple[int, str], WriterFile | None] = {}
_paths: dict[str, str | None] = {}  # by engine URL, resolved once


def lock_path(conn: Connection) -> str | None:
    """The lock file beside the database; None for a database that is no file on disk."""
    url = str(conn.engine.url)
    if url not in _paths:
        database = conn.engine.url.database
        if not database or database == ":memory:" or database.startswith("file:"):
            _paths[url] = None
        else:
            _paths[url] = os.path.realpath(database) + LOCK_SUFFIX
    return _paths[url]


def _lock_for(conn: Connection) -> threading.Lock:
    key = lock_path(conn) or str(conn.engine.url)
    lock = _locks.get(key)
    if lock is None:
        with _locks_guard:
            lock = _locks.setdefault(key, threading.Lock())
    return lock


def _file_for(conn: Connection) -> WriterFile | None:
    path = lock_path(conn)
    if path is None:
        return None
    key = (os.getpid(), path)
    if key not in _files:
        try:
            _files[key] = WriterFile.open(path)
        except OSError as exc:
            log.warning("no lock file for SQLite writers at %s (%s): busy handler only", path, exc)
            if is_passing(exc):
                return None
            _files[key] = None
    return _files[key]


@event.listens_for(Engine, "before_cursor_execute")
def _before_statement(conn: Connection, _cursor, statement: str, *_args) -> None:
    if conn.dialect.name != "sqlite" or _HELD in conn.info or is_read(statement):
        return
    lock = _lock_for(conn)
    if not lock.acquire(timeout=WAIT_SECONDS):
        conn.info[_HELD] = None  # not again at every statement of this transaction
        return
    conn.info[_HELD] = lock
    writer_file = _file_for(conn)
    if writer_file is not None and writer_file.acquire(WAIT_SECONDS):
        conn.info[_FILE_HELD] = writer_file


@on_transaction_end
def _release(info: dict) -> None:
    writer_file = info.pop(_FILE_HELD, None)
    if writer_file is not None:
        writer_file.release()
    lock = info.pop(_HELD, None)
    if lock is not None:
        lock.release()
