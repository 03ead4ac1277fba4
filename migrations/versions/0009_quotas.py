"""quotas: storage limits and usage per organisation and per registry

Every existing organisation and registry gets an unlimited scope whose usage is computed here
from the blob links and manifests already stored, each digest counted once per scope.

Revision ID: 0009_quotas
Revises: 0008_retention
Create Date: 2026-11-25 17:00:00.000000

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0009_quotas"
down_revision = "0008_retention"
branch_labels = None
depends_on = None

# What each registry holds: one row per blob link and per manifest of its repositories.
HELD = """
    SELECT r.registry_id AS registry_id, l.digest AS digest
    FROM blob_links l JOIN repositories r ON r.id = l.repository_id
    UNION ALL
    SELECT r.registry_id, m.digest
    FROM manifests m JOIN repositories r ON r.id = m.repository_id
"""


def upgrade():
    op.create_table(
        "quota_scopes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=True),
        sa.Column("registry_id", sa.Integer(), nullable=True),
        sa.Column("limit_bytes", sa.BigInteger(), nullable=True),
        sa.Column("used_bytes", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name="fk_quota_scopes_organisation_id_organisations",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["registry_id"],
            ["registries.id"],
            name="fk_quota_scopes_registry_id_registries",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_quota_scopes"),
        sa.UniqueConstraint("organisation_id", name="uq_quota_scopes_organisation_id"),
        sa.UniqueConstraint("registry_id", name="uq_quota_scopes_registry_id"),
    )
    op.create_table(
        "quota_contents",
        sa.Column("scope_id", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=150), nullable=False),
        sa.Column("refs", sa.Integer(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["scope_id"],
            ["quota_scopes.id"],
            name="fk_quota_contents_scope_id_quota_scopes",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("scope_id", "digest", name="pk_quota_contents"),
    )
    op.execute(
        "INSERT INTO quota_scopes (organisation_id, used_bytes, updated_at) "
        "SELECT id, 0, CURRENT_TIMESTAMP FROM organisations"
    )
    op.execute(
        "INSERT INTO quota_scopes (registry_id, used_bytes, updated_at) "
        "SELECT id, 0, CURRENT_TIMESTAMP FROM registries"
    )
    op.execute(
        "INSERT INTO quota_contents (scope_id, digest, refs, size) "
        "SELECT s.id, h.digest, COUNT(*), MAX(b.size) "
        f"FROM ({HELD}) h "
        "JOIN quota_scopes s ON s.registry_id = h.registry_id "
        "JOIN blobs b ON b.digest = h.digest "
        "GROUP BY s.id, h.digest"
    )
    op.execute(
        "INSERT INTO quota_contents (scope_id, digest, refs, size) "
        "SELECT s.id, h.digest, COUNT(*), MAX(b.size) "
        f"FROM ({HELD}) h "
        "JOIN registries g ON g.id = h.registry_id "
        "JOIN quota_scopes s ON s.organisation_id = g.organisation_id "
        "JOIN blobs b ON b.digest = h.digest "
        "GROUP BY s.id, h.digest"
    )
    op.execute(
        "UPDATE quota_scopes SET used_bytes = COALESCE("
        "(SELECT SUM(c.size) FROM quota_contents c WHERE c.scope_id = quota_scopes.id), 0)"
    )


def downgrade():
    op.drop_table("quota_contents")
    op.drop_table("quota_scopes")
