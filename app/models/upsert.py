"""Race-free inserts: concurrent replicas end in one state instead of a unique-violation 500."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

from sqlalchemy import bindparam
from sqlalchemy.dialects import postgresql, sqlite

from app.models.base import db, execute_flushed

# (key, dialect) -> the statement: built once, since building and keying a statement costs as
# much as running it.
_BUILT: dict[tuple[Hashable, str], Any] = {}


def built_insert(key: Hashable, build: Callable[[Callable], Any]) -> Any:
    """An INSERT of the session's dialect with ON CONFLICT clauses of one's own: `build(insert)`
    (`insert` being the dialect's) makes it once per key and dialect, with bound parameters.
    Built on a table, not an entity: the ORM's DML path would rebuild and re-key it on every
    execution. Run it with `execute_flushed`, as the ORM's statement would have flushed."""
    dialect = db.session.get_bind().dialect.name
    stmt = _BUILT.get((key, dialect))
    if stmt is None:
        module = postgresql if dialect == "postgresql" else sqlite
        stmt = _BUILT[(key, dialect)] = build(module.insert)
    return stmt


def _built(
    kind: str,
    model,
    conflict: list[str],
    update: list[str],
    columns: list[str],
    returning: str | None = None,
):
    def build(insert):
        stmt = insert(model.__table__).values({c: bindparam(c) for c in columns})
        if kind == "ignore":
            # Its rowcount says whether the row was new: drivers report an INSERT's only when
            # asked (psycopg gives -1 otherwise, which reads as "inserted").
            stmt = stmt.on_conflict_do_nothing(index_elements=conflict)
            stmt = stmt.execution_options(preserve_rowcount=True)
        else:
            stmt = stmt.on_conflict_do_update(
                index_elements=conflict, set_={k: stmt.excluded[k] for k in update}
            )
        return stmt if returning is None else stmt.returning(model.__table__.c[returning])

    key = (kind, model, tuple(conflict), tuple(update), tuple(sorted(columns)), returning)
    return built_insert(key, build)


def insert_ignore(model, conflict: list[str], **values) -> int:
    """Insert unless the row exists; returns how many rows were inserted (0 or 1)."""
    stmt = _built("ignore", model, conflict, [], list(values))
    return execute_flushed(stmt, values).rowcount


def insert_ignore_returning(model, conflict: list[str], column: str, **values) -> Any:
    """Insert unless the row exists; returns the new row's `column` (its id), None when the row
    was there already."""
    stmt = _built("ignore", model, conflict, [], list(values), column)
    return execute_flushed(stmt, values).scalar_one_or_none()


def insert_ignore_many(model, conflict: list[str], rows: list[dict]) -> None:
    """`insert_ignore` of many rows of the same columns, in one call (one prepared statement,
    run once per row)."""
    if rows:
        execute_flushed(_built("ignore", model, conflict, [], list(rows[0])), rows)


def upsert(model, conflict: list[str], update: list[str], **values) -> None:
    stmt = _built("upsert", model, conflict, update, list(values))
    execute_flushed(stmt, values)
