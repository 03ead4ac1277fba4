"""String order by bytes, whatever collation the database was created with."""

from __future__ import annotations

from sqlalchemy.sql.elements import ColumnElement

from app.models.base import db


def bytewise(column: ColumnElement[str]) -> ColumnElement[str]:
    """The column compared and sorted by its bytes, as the OCI spec's lexical order means.

    A PostgreSQL database usually has a linguistic collation (en_US: "a" < "B"), which would
    reorder listings and, worse, make `> last` pagination disagree with the order clients
    expect. SQLite's default BINARY collation is already byte order for UTF-8.
    """
    if db.session.get_bind().dialect.name == "postgresql":
        return column.collate("C")
    return column
