"""The policy stamp is read once per transaction and kept on the connection
(app/access/decisions.py): a write in the same transaction, its end, or the connection's return
to the pool must make the next read go to the database again, or a decision computed before a
change could be reused after it. In process, on the backend CARGOHOLD_TEST_BACKEND names."""

from __future__ import annotations

from sqlalchemy import select, text, update

from app.access import decisions
from app.models import PolicyStamp, Registry, db


def _committed_stamp() -> int:
    with db.engine.connect() as conn:  # another connection: what others see
        return conn.execute(select(PolicyStamp.stamp)).scalar_one()


def test_stamp_is_read_once_per_transaction(inprocess_app):
    with inprocess_app.app_context():
        first = decisions.current_stamp()
        assert first is not None
        # Written behind this transaction's back, by another connection.
        with db.engine.begin() as conn:
            conn.execute(text("UPDATE policy_stamp SET stamp = stamp + 7 WHERE id = 1"))
        assert decisions.current_stamp() == first  # kept for the transaction
        db.session.commit()
        assert decisions.current_stamp() == _committed_stamp() != first
        db.session.remove()


def test_a_write_in_the_transaction_makes_the_stamp_read_again(inprocess_app):
    with inprocess_app.app_context():
        registry = db.session.execute(select(Registry).limit(1)).scalar_one()
        before = decisions.current_stamp()
        # An ORM change, flushed: its trigger writes a fresh stamp in this transaction.
        registry.public = not registry.public
        db.session.flush()
        after_flush = decisions.current_stamp()
        assert after_flush != before
        # A Core statement the ORM never flushes fires the triggers too.
        db.session.execute(
            update(Registry).where(Registry.id == registry.id).values(public=registry.public)
        )
        assert decisions.current_stamp() not in (before, after_flush)
        db.session.rollback()
        assert decisions.current_stamp() == before  # the rolled-back stamps never come back
        db.session.remove()


def test_a_pooled_connection_never_carries_a_stamp_into_another_transaction(inprocess_app):
    with inprocess_app.app_context():
        decisions.current_stamp()
        db.session.remove()  # the connection goes back to the pool, its transaction reset
        with db.engine.begin() as conn:
            conn.execute(text("UPDATE policy_stamp SET stamp = stamp + 11 WHERE id = 1"))
        assert decisions.current_stamp() == _committed_stamp()
        db.session.remove()
