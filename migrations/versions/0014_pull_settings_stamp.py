"""pull settings under the policy stamp: signing and vulnerability policies, pull auditing

Revision ID: 0014_pull_settings_stamp
Revises: 0013_performance
Create Date: 2026-11-25 20:30:00.000000

A manifest GET reads three per-registry settings besides the access policy: whether pulls need a
signature, whether a vulnerability policy blocks, and whether pulls are audited. Watching their
tables (and the registries' `audit_pulls` column) with the same triggers lets every replica keep
them per process until they change, as it keeps authorization decisions.

On SQLite a later migration that rebuilds one of the watched tables (`batch_alter_table` copies
it) drops its triggers and must create them again: 0013's `create_triggers()` for its tables,
then `_watch` here for these (the registries trigger with `REGISTRY_COLUMNS`).
"""

from alembic import op
from sqlalchemy import text


# revision identifiers, used by Alembic.
revision = "0014_pull_settings_stamp"
down_revision = "0013_performance"
branch_labels = None
depends_on = None

REGISTRY_COLUMNS_BEFORE = ("name", "public", "organisation_id")
REGISTRY_COLUMNS = (*REGISTRY_COLUMNS_BEFORE, "audit_pulls")
# table -> columns whose update changes a setting (inserts and deletes always do).
NEW = {
    "signing_policies": ("require_signature", "exempt_writers", "registry_id"),
    "vuln_policies": ("block_at", "unknown", "registry_id"),
}


def _postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def _watch(table: str, columns: tuple[str, ...]) -> None:
    """The trigger set of 0013_performance on one more table (its function exists already)."""
    if _postgres():
        op.execute(
            f"CREATE TRIGGER {table}_policy_stamp AFTER INSERT OR DELETE OR UPDATE OF "
            f"{', '.join(columns)} ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION bump_policy_stamp()"
        )
        return
    bump = "BEGIN UPDATE policy_stamp SET stamp = random() WHERE id = 1; END"
    op.execute(f"CREATE TRIGGER {table}_stamp_ins AFTER INSERT ON {table} {bump}")
    op.execute(f"CREATE TRIGGER {table}_stamp_del AFTER DELETE ON {table} {bump}")
    op.execute(
        f"CREATE TRIGGER {table}_stamp_upd AFTER UPDATE OF {', '.join(columns)} ON {table} {bump}"
    )


def _unwatch(table: str) -> None:
    if _postgres():
        op.execute(f"DROP TRIGGER IF EXISTS {table}_policy_stamp ON {table}")
        return
    for suffix in ("ins", "del", "upd"):
        op.execute(f"DROP TRIGGER IF EXISTS {table}_stamp_{suffix}")


def _bump() -> None:
    # Whatever a process kept under the old stamp was kept without these settings' triggers.
    # A fresh value, as the triggers write one: never a counter a later change could repeat.
    fresh = "nextval('policy_stamp_seq')" if _postgres() else "random()"
    op.get_bind().execute(text(f"UPDATE policy_stamp SET stamp = {fresh} WHERE id = 1"))


def upgrade():
    _unwatch("registries")
    _watch("registries", REGISTRY_COLUMNS)
    for table, columns in NEW.items():
        _watch(table, columns)
    _bump()


def downgrade():
    for table in NEW:
        _unwatch(table)
    _unwatch("registries")
    _watch("registries", REGISTRY_COLUMNS_BEFORE)
    _bump()
