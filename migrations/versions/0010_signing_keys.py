"""signing keys, signature policies and cached signature verifications

Revision ID: 0010_signing_keys
Revises: 0009_quotas
Create Date: 2026-11-25 17:00:00.000000

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0010_signing_keys"
down_revision = "0009_quotas"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "signing_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("registry_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("algorithm", sa.String(length=32), nullable=False),
        sa.Column("fingerprint", sa.String(length=80), nullable=False),
        sa.Column("pem", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("retired_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["registry_id"],
            ["registries.id"],
            name="fk_signing_keys_registry_id_registries",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_signing_keys"),
        sa.UniqueConstraint("registry_id", "name", name="uq_signing_keys_registry_id"),
    )
    op.create_index("ix_signing_keys_registry_id", "signing_keys", ["registry_id"], unique=False)
    op.create_table(
        "signing_policies",
        sa.Column("registry_id", sa.Integer(), nullable=False),
        sa.Column("require_signature", sa.Boolean(), nullable=False),
        sa.Column("exempt_writers", sa.Boolean(), nullable=False),
        sa.Column("key_version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["registry_id"],
            ["registries.id"],
            name="fk_signing_policies_registry_id_registries",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("registry_id", name="pk_signing_policies"),
    )
    op.create_table(
        "signature_checks",
        sa.Column("manifest_id", sa.Integer(), nullable=False),
        sa.Column("key_version", sa.Integer(), nullable=False),
        sa.Column("evidence", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("signatures", sa.JSON(), nullable=False),
        sa.Column("checked_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["manifest_id"],
            ["manifests.id"],
            name="fk_signature_checks_manifest_id_manifests",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("manifest_id", name="pk_signature_checks"),
    )


def downgrade():
    op.drop_table("signature_checks")
    op.drop_table("signing_policies")
    op.drop_index("ix_signing_keys_registry_id", table_name="signing_keys")
    op.drop_table("signing_keys")
