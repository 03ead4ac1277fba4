"""The policy stamp is read once per transaction and kept on the connection
(app/access/decisions.py): a write in the same transaction, its end, or the connection's return
to the pool must make the next read go to the database again, or a decision computed before a
change could be reused after it. In process, on the backend CARGOHOLD_TEST_BACKEND names."""

from __future__ import annotations

import secrets

import pytest
from sqlalchemy import inspect, select, text, update

from app.access import decisions
from app.models import PolicyStamp, Registry, db
from app.models.policy_stamp import WATCHED_TABLES


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


def test_a_write_no_trigger_watches_keeps_the_stamp_and_a_delete_does_not(inprocess_app):
    with inprocess_app.app_context():
        kept = decisions.current_stamp()
        # Behind this transaction's back: only a read would see it.
        with db.engine.begin() as conn:
            conn.execute(text("UPDATE policy_stamp SET stamp = stamp + 5 WHERE id = 1"))
        db.session.execute(text("UPDATE blobs SET size = size WHERE digest = 'none'"))
        db.session.execute(text("INSERT INTO tags(repository_id, name) SELECT 0, 'x' WHERE 1 = 0"))
        assert decisions.current_stamp() == kept
        # A delete may cascade into a table a trigger watches: the stamp is read again.
        db.session.execute(text("DELETE FROM blobs WHERE digest = 'none'"))
        assert decisions.current_stamp() != kept
        db.session.rollback()
        db.session.remove()


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE registries SET public = 1",
        'UPDATE "users" SET email = 1',
        "INSERT INTO access_tokens (id) VALUES (1)",
        "INSERT INTO memberships(user_id) VALUES (1)",
        "insert into public.registry_grants (id) values (1)",
        'INSERT INTO "public"."users" (id) VALUES (1)',
        "UPDATE OR IGNORE users SET email = 1",
        "UPDATE ONLY users SET email = 1",
        "UPDATE policy_stamp SET stamp = 2",
        "DELETE FROM blob_links",
        "INSERT OR REPLACE INTO blobs (digest) VALUES ('x')",
        "WITH x AS (SELECT 1) INSERT INTO blobs SELECT * FROM x",
        "CREATE TABLE t (id int)",
        "",
    ],
)
def test_statements_that_may_move_the_stamp(statement):
    assert decisions.may_move_stamp(statement)


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT stamp FROM policy_stamp",
        "INSERT INTO blob_links (repository_id) VALUES (1)",
        "UPDATE manifests SET digest=manifests.digest WHERE id = 1",
        "INSERT INTO audit_events (at) VALUES (?)",
        " update quota_scopes set used_bytes = 1",
    ],
)
def test_statements_that_cannot_move_the_stamp(statement):
    assert not decisions.may_move_stamp(statement)


def test_only_watched_tables_have_triggers_and_no_key_cascades_on_update(inprocess_app):
    # What `may_move_stamp` rests on: an INSERT or UPDATE of another table cannot reach the stamp.
    with inprocess_app.app_context():
        if db.engine.dialect.name == "postgresql":
            query = "SELECT DISTINCT event_object_table FROM information_schema.triggers"
        else:
            query = "SELECT DISTINCT tbl_name FROM sqlite_master WHERE type = 'trigger'"
        with db.engine.connect() as conn:
            triggered = set(conn.execute(text(query)).scalars())
        assert triggered and triggered <= set(WATCHED_TABLES)
        inspector = inspect(db.engine)
        for table in inspector.get_table_names():
            for key in inspector.get_foreign_keys(table):
                assert (key.get("options") or {}).get("onupdate") in (None, "NO ACTION")


def test_a_pooled_connection_never_carries_a_stamp_into_another_transaction(inprocess_app):
    with inprocess_app.app_context():
        decisions.current_stamp()
        db.session.remove()  # the connection goes back to the pool, its transaction reset
        with db.engine.begin() as conn:
            conn.execute(text("UPDATE policy_stamp SET stamp = stamp + 11 WHERE id = 1"))
        assert decisions.current_stamp() == _committed_stamp()
        db.session.remove()


def test_a_memo_never_keeps_what_a_pending_change_decided(inprocess_app):
    """A change not yet flushed moves the stamp before it is read (as a query would flush
    it), so a value computed with it is kept under the new stamp, which a rollback retires."""
    memo: decisions.StampedMemo[bool] = decisions.StampedMemo(8)
    with inprocess_app.app_context():
        registry = db.session.execute(select(Registry).limit(1)).scalar_one()
        committed = decisions.current_stamp()
        was_public = registry.public
        registry.public = not was_public  # pending, not flushed
        seen = memo.get(registry.id, lambda: db.session.get(Registry, registry.id).public)
        assert seen is (not was_public)
        db.session.rollback()
        assert decisions.current_stamp() == committed
        assert memo.get(registry.id, lambda: db.session.get(Registry, registry.id).public) is (
            was_public
        )
        db.session.remove()


def test_quota_scopes_opened_by_a_rolled_back_transaction_are_not_kept(inprocess_app):
    """The first write to a new registry opens its quota scopes; if that transaction rolls
    back, no process may go on charging the ids it saw."""
    from app.access import tenancy
    from app.models import QuotaScope
    from app.registry import quotas

    with inprocess_app.app_context():
        reg = tenancy.create_registry("acme", f"scopes{secrets.token_hex(3)}")
        db.session.commit()
        first = quotas._scope_ids(reg.id)
        again = quotas._scope_ids(reg.id)  # the rows exist now, in this transaction only
        assert first == again
        db.session.rollback()
        for _ in range(2):  # a miss, then whatever was kept
            ids = quotas._scope_ids(reg.id)
            found = {row.id for row in db.session.execute(select(QuotaScope)).scalars()}
            assert {scope_id for scope_id, _kind, _owner in ids} <= found
            db.session.commit()
        db.session.remove()
