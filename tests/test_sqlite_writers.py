"""SQLite writers queue on a process lock and then on a file lock beside the database
(app/models/sqlite_writes.py, app/models/writer_file.py): taken at a transaction's first write,
held until it ends, one descriptor per process so that a forked worker never shares its
parent's lock, a bounded wait, and no lock file that another user could hold."""

from __future__ import annotations

import base64
import fcntl
import os
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, event, text

import app.models  # noqa: F401 - registers the writers' locks on every engine
from app.access import audit
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


def _refused(database: Path) -> bool:
    """Whether this process gave up on the database's lock file (it logs why, too)."""
    path = os.path.realpath(database) + sqlite_writes.LOCK_SUFFIX
    return sqlite_writes._files.get((os.getpid(), path), "unseen") is None


def test_a_lock_file_that_cannot_be_opened_leaves_writes_to_sqlite(tmp_path):
    (tmp_path / ("data.db" + sqlite_writes.LOCK_SUFFIX)).mkdir()  # not a file: open fails
    engine = create_engine(f"sqlite:///{tmp_path / 'data.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (n INTEGER)"))
        conn.execute(text("INSERT INTO t VALUES (1)"))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT n FROM t")).scalar_one() == 1
    engine.dispose()
    assert _refused(tmp_path / "data.db")


def test_a_symbolic_link_is_never_followed(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("")
    (tmp_path / ("data.db" + sqlite_writes.LOCK_SUFFIX)).symlink_to(elsewhere)
    engine = create_engine(f"sqlite:///{tmp_path / 'data.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (n INTEGER)"))
        assert not _locked_by_someone(elsewhere), "the lock went through the link"
    engine.dispose()
    assert _refused(tmp_path / "data.db")


@pytest.fixture
def lock_files(tmp_path):
    """Two lock files open on one path: two holders, as two processes are."""
    path = str(tmp_path / "lock")
    opened = [WriterFile.open(path), WriterFile.open(path)]
    yield opened
    for lock in opened:
        os.close(lock.fd)


def test_a_wait_is_bounded_and_an_abandoned_wait_lets_the_lock_go(lock_files, tmp_path):
    holder, waiter = lock_files
    assert holder.acquire(1)
    started = time.monotonic()
    assert not waiter.acquire(0.2)
    assert 0.2 <= time.monotonic() - started < 5
    abandoned = waiter._pending
    holder.release()
    abandoned.thread.join(5)  # it got the lock, nobody wanted it any more: let go
    assert not abandoned.thread.is_alive()
    assert not _locked_by_someone(tmp_path / "lock")
    assert waiter.acquire(1)
    assert _locked_by_someone(tmp_path / "lock")
    waiter.release()


def test_a_wait_given_up_on_is_taken_back_not_doubled(lock_files, tmp_path):
    """A second wait on the same open file would be granted beside the first, which, given up
    on, would then drop the lock under the second's caller."""
    holder, waiter = lock_files
    assert holder.acquire(1)
    assert not waiter.acquire(0.1)
    first = waiter._pending
    assert not waiter.acquire(0.1)
    assert waiter._pending is first, "a second wait on one open file"
    got = []
    taking = threading.Thread(target=lambda: got.append(waiter.acquire(5)))
    taking.start()
    time.sleep(0.1)
    holder.release()
    taking.join(5)
    first.thread.join(5)
    assert got == [True] and waiter._pending is None
    assert _locked_by_someone(tmp_path / "lock"), "the lock was dropped under its holder"
    waiter.release()
    assert not _locked_by_someone(tmp_path / "lock")


def test_only_the_process_that_took_the_lock_lets_it_go(lock_files, tmp_path):
    lock = lock_files[0]
    assert lock.acquire(1)
    lock.pid = -1  # as a forked child holding its parent's open file sees it
    lock.release()
    assert _locked_by_someone(tmp_path / "lock")


def test_a_login_is_written_with_its_request_not_at_authentication(inprocess_app):
    """The event of a successful login is recorded as its request starts; inserted then, it
    would hold SQLite's one write lock for all of the request's work. It is added just
    before the request commits."""
    seen: list[str] = []
    with inprocess_app.app_context():
        engine = app.models.db.engine
    audit._LOGGED_IN.clear()  # a login recorded in the last minutes is not recorded again

    def statement(_conn, _cursor, sql, *_args):
        seen.append(sql.split(None, 1)[0].upper())

    def commit(_conn):
        seen.append("COMMIT")

    credentials = base64.b64encode(f"admin:{INPROCESS_ADMIN_PASSWORD}".encode()).decode()
    event.listen(engine, "before_cursor_execute", statement)
    event.listen(engine, "commit", commit)
    try:
        # The catalog reads after authenticating (what the caller may list).
        r = inprocess_app.test_client().get(
            "/v2/_catalog", headers={"Authorization": f"Basic {credentials}"}
        )
    finally:
        event.remove(engine, "before_cursor_execute", statement)
        event.remove(engine, "commit", commit)
    assert r.status_code == 200, r.data
    written = seen.index("INSERT")
    assert all(s in ("SELECT", "PRAGMA") for s in seen[:written]), seen
    assert seen[written + 1] == "COMMIT", seen


def test_an_upload_is_made_durable_before_its_blob_row_is_written(
    inprocess_app, inprocess_admin, monkeypatch
):
    """The fsync of an upload (0.45 s for 1 GiB) runs before the blob's row is written: under
    that row's write lock it would stall every writer of every worker."""
    seen: list[str] = []
    store = type(inprocess_app.extensions["cargohold.store"])
    sync = store.upload_sync

    def recorded_sync(self, upload_id: str) -> None:
        seen.append("sync")
        sync(self, upload_id)

    def statement(_conn, _cursor, sql, *_args):
        if sql.lstrip().upper().startswith("INSERT INTO BLOBS"):
            seen.append("blob row")

    monkeypatch.setattr(store, "upload_sync", recorded_sync)
    with inprocess_app.app_context():
        engine = app.models.db.engine
    event.listen(engine, "before_cursor_execute", statement)
    try:
        inprocess_admin.push_blob("acme/main/durable/app", os.urandom(4096))
    finally:
        event.remove(engine, "before_cursor_execute", statement)
    assert seen == ["sync", "blob row"], seen
