"""lifecycle: blob state, manifest references, garbage-collection candidates and figures,
tag immutability rules

Revision ID: 0006_lifecycle
Revises: 0004_credential_epochs
Create Date: 2026-11-25 14:30:00.000000

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0006_lifecycle"
down_revision = "0005_cognito_identity"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("blobs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("state", sa.String(length=16), nullable=False, server_default="live")
        )
        batch_op.create_index("ix_blobs_state", ["state"], unique=False)
    with op.batch_alter_table("manifests", schema=None) as batch_op:
        batch_op.create_index("ix_manifests_digest", ["digest"], unique=False)
    op.create_table(
        "manifest_references",
        sa.Column("manifest_id", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=150), nullable=False),
        sa.ForeignKeyConstraint(
            ["manifest_id"],
            ["manifests.id"],
            name="fk_manifest_references_manifest_id_manifests",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("manifest_id", "digest", name="pk_manifest_references"),
    )
    op.create_index(
        "ix_manifest_references_digest", "manifest_references", ["digest"], unique=False
    )
    op.create_table(
        "gc_candidates",
        sa.Column("digest", sa.String(length=150), nullable=False),
        sa.Column("review_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("digest", name="pk_gc_candidates"),
    )
    op.create_index("ix_gc_candidates_review_at", "gc_candidates", ["review_at"], unique=False)
    op.create_table(
        "gc_stats",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("blobs_deleted", sa.BigInteger(), nullable=False),
        sa.Column("bytes_reclaimed", sa.BigInteger(), nullable=False),
        sa.Column("last_run_at", sa.DateTime(), nullable=True),
        sa.Column("last_run_deleted", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_gc_stats"),
    )

    op.create_table(
        "tag_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("registry_id", sa.Integer(), nullable=False),
        sa.Column("pattern", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["registry_id"],
            ["registries.id"],
            name="fk_tag_rules_registry_id_registries",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_tag_rules"),
        sa.UniqueConstraint("registry_id", "pattern", name="uq_tag_rules_registry_id"),
    )
    op.create_index("ix_tag_rules_registry_id", "tag_rules", ["registry_id"], unique=False)


def downgrade():
    op.drop_index("ix_tag_rules_registry_id", table_name="tag_rules")
    op.drop_table("tag_rules")
    op.drop_table("gc_stats")
    op.drop_index("ix_gc_candidates_review_at", table_name="gc_candidates")
    op.drop_table("gc_candidates")
    op.drop_index("ix_manifest_references_digest", table_name="manifest_references")
    op.drop_table("manifest_references")
    with op.batch_alter_table("manifests", schema=None) as batch_op:
        batch_op.drop_index("ix_manifests_digest")
    with op.batch_alter_table("blobs", schema=None) as batch_op:
        batch_op.drop_index("ix_blobs_state")
        batch_op.drop_column("state")
