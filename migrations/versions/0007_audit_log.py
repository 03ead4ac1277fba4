"""audit log: append-only events, the per-registry pull audit switch, who pushed manifests and
tags

Revision ID: 0007_audit_log
Revises: 0006_lifecycle
Create Date: 2026-11-25 17:00:00.000000

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0007_audit_log"
down_revision = "0006_lifecycle"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "audit_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("result", sa.String(length=16), nullable=False),
        sa.Column("actor_kind", sa.String(length=16), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("actor_name", sa.String(length=64), nullable=True),
        sa.Column("token_id", sa.Integer(), nullable=True),
        sa.Column("ci", sa.JSON(), nullable=True),
        sa.Column("address", sa.String(length=64), nullable=True),
        sa.Column("org", sa.String(length=64), nullable=True),
        sa.Column("registry_name", sa.String(length=64), nullable=True),
        sa.Column("repository", sa.String(length=255), nullable=True),
        sa.Column("reference", sa.String(length=255), nullable=True),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_audit_events"),
    )
    op.create_index("ix_audit_events_at", "audit_events", ["at"], unique=False)
    op.create_index("ix_audit_events_action", "audit_events", ["action"], unique=False)
    op.create_index("ix_audit_events_actor_name", "audit_events", ["actor_name"], unique=False)
    op.create_index("ix_audit_events_org_id", "audit_events", ["org", "id"], unique=False)
    op.create_index(
        "ix_audit_events_target", "audit_events", ["repository", "reference"], unique=False
    )
    with op.batch_alter_table("registries", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("audit_pulls", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("manifests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pushed_by", sa.String(length=64), nullable=True))
    with op.batch_alter_table("tags", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pushed_by", sa.String(length=64), nullable=True))


def downgrade():
    with op.batch_alter_table("tags", schema=None) as batch_op:
        batch_op.drop_column("pushed_by")
    with op.batch_alter_table("manifests", schema=None) as batch_op:
        batch_op.drop_column("pushed_by")
    with op.batch_alter_table("registries", schema=None) as batch_op:
        batch_op.drop_column("audit_pulls")
    op.drop_index("ix_audit_events_target", table_name="audit_events")
    op.drop_index("ix_audit_events_org_id", table_name="audit_events")
    op.drop_index("ix_audit_events_actor_name", table_name="audit_events")
    op.drop_index("ix_audit_events_action", table_name="audit_events")
    op.drop_index("ix_audit_events_at", table_name="audit_events")
    op.drop_table("audit_events")
