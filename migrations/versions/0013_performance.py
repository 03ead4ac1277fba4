"""performance: the policy stamp and its triggers; byte-order indexes for tag and catalog pages

Revision ID: 0013_performance
Revises: 0012_python_attestations
Create Date: 2026-11-25 17:00:00.000000

The triggers write a fresh `policy_stamp.stamp` in the same transaction as any change to what
authorization or a credential check reads (app/models/policy_stamp.py). On SQLite, a later
migration that rebuilds one of these tables (`batch_alter_table` copies it) drops its triggers:
such a migration must create them again (`create_triggers`).

On PostgreSQL the listings sort by bytes (`COLLATE "C"`, app/models/ordering.py), which the
unique indexes (the database's collation) cannot serve: a page of 100 tags of a repository with
100,000 would sort them all. SQLite's unique indexes are already in byte order.
"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0013_performance"
down_revision = "0012_python_attestations"
branch_labels = None
depends_on = None

# table -> columns whose update changes a decision (inserts and deletes always do).
WATCHED = {
    "organisations": ("name",),
    "registries": ("name", "public", "organisation_id"),
    "memberships": ("role", "user_id", "organisation_id"),
    "registry_grants": ("role", "user_id", "registry_id"),
    "users": ("username", "password_hash", "credential_epoch", "is_site_admin", "robot_org_id"),
    "access_tokens": ("user_id", "scope", "registries", "expires_at", "revoked_at"),
}


def _postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def create_triggers() -> None:
    if _postgres():
        # A sequence never hands out a value twice, even to a transaction that rolls back.
        op.execute("CREATE SEQUENCE policy_stamp_seq")
        op.execute(
            """
            CREATE FUNCTION bump_policy_stamp() RETURNS trigger AS $$
            BEGIN
                UPDATE policy_stamp SET stamp = nextval('policy_stamp_seq') WHERE id = 1;
                RETURN NULL;
            END
            $$ LANGUAGE plpgsql
            """
        )
        for table, columns in WATCHED.items():
            op.execute(
                f"CREATE TRIGGER {table}_policy_stamp AFTER INSERT OR DELETE OR UPDATE OF "
                f"{', '.join(columns)} ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION bump_policy_stamp()"
            )
        return
    # SQLite has neither sequences nor statement triggers: a random 64-bit value per row
    # changed (a repeat is as likely as guessing a random 64-bit number).
    bump = "BEGIN UPDATE policy_stamp SET stamp = random() WHERE id = 1; END"
    for table, columns in WATCHED.items():
        op.execute(f"CREATE TRIGGER {table}_stamp_ins AFTER INSERT ON {table} {bump}")
        op.execute(f"CREATE TRIGGER {table}_stamp_del AFTER DELETE ON {table} {bump}")
        op.execute(
            f"CREATE TRIGGER {table}_stamp_upd AFTER UPDATE OF {', '.join(columns)} "
            f"ON {table} {bump}"
        )


def drop_triggers() -> None:
    if _postgres():
        for table in WATCHED:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_policy_stamp ON {table}")
        op.execute("DROP FUNCTION IF EXISTS bump_policy_stamp()")
        op.execute("DROP SEQUENCE IF EXISTS policy_stamp_seq")
        return
    for table in WATCHED:
        for suffix in ("ins", "del", "upd"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_stamp_{suffix}")


def upgrade():
    op.create_table(
        "policy_stamp",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("stamp", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_policy_stamp"),
    )
    op.execute("INSERT INTO policy_stamp (id, stamp) VALUES (1, 0)")
    create_triggers()
    # The Simple root index's version and Last-Modified: seeks, not scans of every file.
    op.create_index("ix_python_files_registry_newest", "python_files", ["registry_id", "id"])
    op.create_index(
        "ix_python_files_registry_deleted", "python_files", ["registry_id", "deleted_at"]
    )
    op.create_index(
        "ix_python_projects_registry_updated", "python_projects", ["registry_id", "updated_at"]
    )
    if _postgres():
        op.execute(
            'CREATE INDEX ix_tags_repository_name_bytes ON tags (repository_id, name COLLATE "C")'
        )
        op.execute('CREATE INDEX ix_repositories_name_bytes ON repositories (name COLLATE "C")')


def downgrade():
    if _postgres():
        op.execute("DROP INDEX IF EXISTS ix_repositories_name_bytes")
        op.execute("DROP INDEX IF EXISTS ix_tags_repository_name_bytes")
    op.drop_index("ix_python_projects_registry_updated", table_name="python_projects")
    op.drop_index("ix_python_files_registry_deleted", table_name="python_files")
    op.drop_index("ix_python_files_registry_newest", table_name="python_files")
    drop_triggers()
    op.drop_table("policy_stamp")
