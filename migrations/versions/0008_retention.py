"""retention: per-registry retention policies; indexes for the newest tags and the oldest
manifests of a repository

Revision ID: 0008_retention
Revises: 0007_audit_log
Create Date: 2026-11-25 17:00:00.000000

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0008_retention"
down_revision = "0007_audit_log"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "retention_policies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("registry_id", sa.Integer(), nullable=False),
        sa.Column("repository_pattern", sa.String(length=255), nullable=False),
        sa.Column("tag_pattern", sa.String(length=128), nullable=False),
        sa.Column("keep_count", sa.Integer(), nullable=True),
        sa.Column("untagged_days", sa.Integer(), nullable=True),
        sa.Column("protect_pattern", sa.String(length=128), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("last_run_at", sa.DateTime(), nullable=True),
        sa.Column("last_run_removed", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["registry_id"],
            ["registries.id"],
            name="fk_retention_policies_registry_id_registries",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_retention_policies"),
    )
    op.create_index(
        "ix_retention_policies_registry_id", "retention_policies", ["registry_id"], unique=False
    )
    op.create_index(
        "ix_tags_repository_updated", "tags", ["repository_id", "updated_at"], unique=False
    )
    op.create_index(
        "ix_manifests_repository_created",
        "manifests",
        ["repository_id", "created_at"],
        unique=False,
    )


def downgrade():
    op.drop_index("ix_manifests_repository_created", table_name="manifests")
    op.drop_index("ix_tags_repository_updated", table_name="tags")
    op.drop_index("ix_retention_policies_registry_id", table_name="retention_policies")
    op.drop_table("retention_policies")
