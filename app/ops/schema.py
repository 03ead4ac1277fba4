"""Schema migrations at start-up, one replica at a time, and whether the schema is at head."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Engine

# pg_advisory_lock key: any constant the application uses for nothing else ("cargohold").
ADVISORY_KEY = 0x636172676F686F6C


@contextmanager
def migration_lock(engine: Engine, lock_dir: Path) -> Iterator[None]:
    """Held while migrations run: replicas starting together upgrade one after the other, and
    the later ones find the schema already at head. PostgreSQL: a session advisory lock on a
    connection of its own. SQLite: an exclusive lock on a file beside the data."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": ADVISORY_KEY})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_KEY})
                conn.commit()
        return
    lock_dir.mkdir(parents=True, exist_ok=True)
    with open(lock_dir / "migrate.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@cache
def head_revisions(migrations: Path) -> frozenset[str]:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(migrations))
    return frozenset(ScriptDirectory.from_config(config).get_heads())


def current_revisions(engine: Engine) -> frozenset[str]:
    with engine.connect() as conn:
        try:
            rows = conn.execute(text("SELECT version_num FROM alembic_version")).scalars()
            return frozenset(rows)
        except Exception:
            return frozenset()
