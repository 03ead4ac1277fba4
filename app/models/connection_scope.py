"""State kept on a database connection for the length of one transaction.

`Connection.info` belongs to the pooled DBAPI connection, so it outlives the transaction and
the checkout: whoever keeps something there registers an `on_transaction_end` hook, which runs
when the transaction commits or rolls back and whenever the pool takes the connection back,
resets it or hands it out (a rollback on return to the pool fires no Connection event).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.pool import Pool

_HOOKS: list[Callable[[dict], None]] = []


def on_transaction_end(hook: Callable[[dict], None]) -> Callable[[dict], None]:
    """Register `hook(info)`; usable as a decorator."""
    _HOOKS.append(hook)
    return hook


def is_read(statement: str) -> bool:
    """A statement that cannot write (or fire a trigger): a SELECT or a PRAGMA."""
    return statement.lstrip()[:6].upper() in ("SELECT", "PRAGMA")


def _end(info: dict) -> None:
    for hook in _HOOKS:
        hook(info)


@event.listens_for(Engine, "commit")
@event.listens_for(Engine, "rollback")
def _transaction_ended(conn) -> None:
    _end(conn.info)


@event.listens_for(Pool, "checkin")
def _returned(_dbapi_connection, record) -> None:
    if record is not None:
        _end(record.info)


@event.listens_for(Pool, "reset")
def _reset(_dbapi_connection, record, _reset_state) -> None:
    if record is not None:
        _end(record.info)


@event.listens_for(Pool, "checkout")
def _taken(_dbapi_connection, record, _proxy) -> None:
    _end(record.info)
