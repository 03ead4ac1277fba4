"""SQLite writers queue on a process lock and then on a file lock beside the database
(app/models/sqlite_writes.py, app/models/writer_file.py): taken at a transaction's first write,
held until it ends, one descriptor per process so that a forked worker never shares its
parent's lock, a bounded wait, and no lock file that another user could hold."""

from __future__ import annotations

import base64
import fcntl
import os
import secrets
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, event, text

import app.models  # noqa: F401 - registers the writers' locks on every engine
from app.models import sqlite_writes
from app.models.writer_file import WriterFile
from tests.conftest import INPROCESS_ADMIN_PASSWORD


@pytest.fixture
def engine(tmp_path: Path):
    engine = create_engine(f"sqlite:///{tmp_path / 'data.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (n INTEGER)"))
    yield engine
    engine.dispose()


def _locked_by_someone(path: Path) -> bool:
    """Whether another descriptor holds the file lock: one of our own would conflict too."""
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def test_a_write_holds_the_file_lock_until_commit(engine, tmp_path):
    lock = tmp_path / ("data.db" + sqlite_writes.LOCK_SUFFIX)
    with engine.connect() as conn:
        conn.execute(text("SELECT count(*) FROM t"))
        assert not _locked_by_someone(lock), "a read took the writers' lock"
        conn.execute(text("INSERT INTO t VALUES (1)"))
        assert _locked_by_someone(lock)
        conn.commit()
        assert not _locked_by_someone(lock)
        conn.execute(text("INSERT INTO t VALUES (2)"))
        assert _locked_by_someone(lock)
        conn.rollback()
        assert not _locked_by_someone(lock)
        assert conn.execute(text("SELECT n FROM t")).scalars().all() == [1]


def test_returning_a_connection_mid_transaction_frees_the_lock(engine, tmp_path):
    lock = tmp_path / ("data.db" + sqlite_writes.LOCK_SUFFIX)
    conn = engine.connect()
    conn.execute(text("INSERT INTO t VALUES (1)"))
    assert _locked_by_someone(lock)
    conn.close()  # the pool rolls it back on return: no Connection event fires
    assert not _locked_by_someone(lock)


def test_a_forked_process_does_not_share_its_parents_lock(engine, tmp_path):
    with engine.connect() as conn:
        conn.execute(text("INSERT INTO t VALUES (1)"))  # the parent holds the lock now
        pid = os.fork()
        if pid == 0:  # the child: its own descriptor, which must find the lock taken
            code = 1
            try:
                fd = sqlite_writes._file_for(conn).fd
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        conn.rollback()
    assert os.waitstatus_to_exitcode(status) == 0, "the child took a lock its parent held"


def test_a_database_in_memory_writes_without_a_lock_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    engine = create_engine("sqlite://")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (n INTEGER)"))
        conn.execute(text("INSERT INTO t VALUES (1)"))
    engine.dispose()
    assert list(tmp_path.iterdir()) == []


def test_a_lock_file_that_cannot_be_opened_leaves_writes_to_sqlite(tmp_path, caplog):
    (tmp_path / ("data.db" + sqlite_writes.LOCK_SUFFIX)).mkdir()  # not a file: open fails
    engine = create_engine(f"sqlite:///{tmp_path / 'data.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (n INTEGER)"))
        conn.execute(text("INSERT INTO t VALUES (1)"))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT n FROM t")).scalar_one() == 1
    engine.dispose()
    assert "busy handler only" in caplog.text


def test_a_symbolic_link_is_never_followed(tmp_path, caplog):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("")
    (tmp_path / ("data.db" + sqlite_writes.LOCK_SUFFIX)).symlink_to(elsewhere)
    engine = create_engine(f"sqlite:///{tmp_path / 'data.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (n INTEGER)"))
    engine.dispose()
    assert "busy handler only" in caplog.text
    assert not _locked_by_someone(elsewhere)


def test_a_wait_is_bounded_and_an_abandoned_wait_lets_the_lock_go(tmp_path):
    path = str(tmp_path / "lock")
    holder, waiter = WriterFile.open(path), WriterFile.open(path)  # two open files: two holders
    assert holder.acquire(1)
    started = time.monotonic()
    assert not waiter.acquire(0.2)
    assert 0.2 <= time.monotonic() - started < 5
    holder.release()
    # The abandoned wait gets the lock once it is free, and lets it go at once.
    deadline = time.monotonic() + 5
    while _locked_by_someone(Path(path)) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not _locked_by_someone(Path(path))
    assert waiter.acquire(1)
    waiter.release()


def test_only_the_process_that_took_the_lock_lets_it_go(tmp_path):
    lock = WriterFile.open(str(tmp_path / "lock"))
    assert lock.acquire(1)
    lock.pid = -1  # as a forked child holding its parent's open file sees it
    lock.release()
    assert _locked_by_someone(tmp_path / "lock")


def test_a_login_writes_its_event_after_the_requests_transaction(inprocess_app):
    """The event of a successful login is recorded as its request starts; written then, it
    would hold SQLite's one write lock for all of the request's work."""
    seen: list[str] = []
    with inprocess_app.app_context():
        engine = app.models.db.engine

    def statement(_conn, _cursor, sql, *_args):
        seen.append(sql.split(None, 1)[0].upper())

    def commit(_conn):
        seen.append("COMMIT")

    credentials = base64.b64encode(f"admin:{INPROCESS_ADMIN_PASSWORD}".encode()).decode()
    event.listen(engine, "before_cursor_execute", statement)
    event.listen(engine, "commit", commit)
    try:
        r = inprocess_app.test_client().get(
            "/v2/",
            headers={"Authorization": f"Basic {credentials}"},
            environ_base={"REMOTE_ADDR": f"192.0.2.{secrets.randbelow(250) + 1}"},
        )
    finally:
        event.remove(engine, "before_cursor_execute", statement)
        event.remove(engine, "commit", commit)
    assert r.status_code == 200, r.data
    first_commit = seen.index("COMMIT")
    assert all(s in ("SELECT", "PRAGMA") for s in seen[:first_commit]), seen
    assert "INSERT" in seen[first_commit:], seen
