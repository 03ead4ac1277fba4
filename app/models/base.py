from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

# Stable constraint names keep Alembic migrations identical on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


db = SQLAlchemy(model_class=Base)


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def flush_pending() -> None:
    """What a query through the session does first (autoflush), for statements that go past
    it (Core DML on the tables, reads on the session's connection): pending changes reach the
    database before them, so they see them and a row they name exists."""
    session = db.session()
    if session.autoflush and (session.new or session.dirty or session.deleted):
        session.flush()


def execute_flushed(statement: Any, params: Any = None) -> Any:
    """Run a statement built on a table (past the ORM) as the ORM would run its own: what the
    session holds is flushed first."""
    flush_pending()
    return db.session.execute(statement, params)
