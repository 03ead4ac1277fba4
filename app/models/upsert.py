"""Race-free inserts: concurrent replicas end in one state instead of a unique-violation 500."""

from __future__ import annotations

from sqlalchemy import bindparam
from sqlalchemy.dialects import postgresql, sqlite

from app.models.base import db


def _insert(model):
    dialect = db.session.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(model)


def insert_statement(model):
    """An INSERT of the session's dialect, for ON CONFLICT clauses of one's own."""
    return _insert(model)


# (kind, dialect, model, conflict, update, columns) -> the statement, with a parameter per
# column: built once, since building and keying a statement costs as much as running it.
_BUILT: dict[tuple, object] = {}


def _built(kind: str, model, conflict: list[str], update: list[str], columns: list[str]):
    dialect = db.session.get_bind().dialect.name
    key = (kind, dialect, model, tuple(conflict), tuple(update), tuple(sorted(columns)))
    stmt = _BUILT.get(key)
    if stmt is None:
        module = postgresql if dialect == "postgresql" else sqlite
        stmt = module.insert(model).values({c: bindparam(c) for c in columns})
        if kind == "ignore":
            stmt = stmt.on_conflict_do_nothing(index_elements=conflict)
        else:
            stmt = stmt.on_conflict_do_update(
                index_elements=conflict, set_={k: stmt.excluded[k] for k in update}
            )
        _BUILT[key] = stmt
    return stmt


# One row's statement as written, not the ORM's bulk insert (which parameters would select).
_RAW = {"dml_strategy": "raw"}


def insert_ignore(model, conflict: list[str], **values) -> int:
    """Insert unless the row exists; returns how many rows were inserted (0 or 1)."""
    stmt = _built("ignore", model, conflict, [], list(values))
    return db.session.execute(stmt, values, execution_options=_RAW).rowcount


def upsert(model, conflict: list[str], update: list[str], **values) -> None:
    stmt = _built("upsert", model, conflict, update, list(values))
    db.session.execute(stmt, values, execution_options=_RAW)
