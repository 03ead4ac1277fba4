"""SQLite writers queue on a process lock and then on a file lock beside the database
(app/models/sqlite_writes.py): taken at a transaction's first write, held until it ends, one
descriptor per process so that a forked worker never shares its parent's lock."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

import app.models  # noqa: F401 - registers the writers' locks on every engine
from app.models import sqlite_writes


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
                fd = sqlite_writes._file_for(conn)
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
