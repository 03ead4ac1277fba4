"""Race-free inserts: concurrent replicas end in one state instead of a unique-violation 500."""

from __future__ import annotations

from sqlalchemy.dialects import postgresql, sqlite

from app.models.base import db


def _insert(model):
    dialect = db.session.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(model)


def insert_statement(model):
    """An INSERT of the session's dialect, for ON CONFLICT clauses of one's own."""
    return _insert(model)


def insert_ignore(model, conflict: list[str], **values) -> int:
    """Insert unless the row exists; returns how many rows were inserted (0 or 1)."""
    stmt = _insert(model).values(**values).on_conflict_do_nothing(index_elements=conflict)
    return db.session.execute(stmt).rowcount


def upsert(model, conflict: list[str], update: list[str], **values) -> None:
    stmt = _insert(model).values(**values)
    stmt = stmt.on_conflict_do_update(
        index_elements=conflict, set_={k: stmt.excluded[k] for k in update}
    )
    db.session.execute(stmt)
