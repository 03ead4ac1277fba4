"""vulnerabilities: the OSV database in versions, affected packages indexed by (ecosystem, name),
cached reports, per-registry policy and allow-list

Revision ID: 0011_vulnerabilities
Revises: 0010_signing_keys
Create Date: 2026-11-25 16:37:06.920469

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0011_vulnerabilities"
down_revision = "0010_signing_keys"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "vuln_database_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("imported_at", sa.DateTime(), nullable=False),
        sa.Column("source", sa.String(length=255), nullable=False),
        sa.Column("content_digest", sa.String(length=64), nullable=False),
        sa.Column("advisories", sa.Integer(), nullable=False),
        sa.Column("added", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vuln_database_versions")),
    )
    with op.batch_alter_table("vuln_database_versions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_vuln_database_versions_content_digest"), ["content_digest"], unique=False
        )

    op.create_table(
        "advisories",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("modified", sa.String(length=64), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("details", sa.Text(), nullable=True),
        sa.Column("aliases", sa.JSON(), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("vector", sa.String(length=255), nullable=True),
        sa.Column("label", sa.String(length=32), nullable=True),
        sa.Column("references", sa.JSON(), nullable=True),
        sa.Column("withdrawn", sa.String(length=64), nullable=True),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["vuln_database_versions.id"],
            name=op.f("fk_advisories_version_id_vuln_database_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_advisories")),
    )
    op.create_table(
        "affected_packages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("advisory_id", sa.String(length=128), nullable=False),
        sa.Column("ecosystem", sa.String(length=64), nullable=False),
        sa.Column("ecosystem_full", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("ranges", sa.JSON(), nullable=True),
        sa.Column("versions", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["advisory_id"],
            ["advisories.id"],
            name=op.f("fk_affected_packages_advisory_id_advisories"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_affected_packages")),
    )
    with op.batch_alter_table("affected_packages", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_affected_packages_advisory_id"), ["advisory_id"], unique=False
        )
        batch_op.create_index("ix_affected_packages_package", ["ecosystem", "name"], unique=False)

    op.create_table(
        "vuln_allowances",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("registry_id", sa.Integer(), nullable=False),
        sa.Column("advisory_id", sa.String(length=128), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["registry_id"],
            ["registries.id"],
            name=op.f("fk_vuln_allowances_registry_id_registries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vuln_allowances")),
        sa.UniqueConstraint(
            "registry_id", "advisory_id", name=op.f("uq_vuln_allowances_registry_id")
        ),
    )
    with op.batch_alter_table("vuln_allowances", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_vuln_allowances_registry_id"), ["registry_id"], unique=False
        )

    op.create_table(
        "vuln_policies",
        sa.Column("registry_id", sa.Integer(), nullable=False),
        sa.Column("block_at", sa.Float(), nullable=True),
        sa.Column("unknown", sa.String(length=8), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["registry_id"],
            ["registries.id"],
            name=op.f("fk_vuln_policies_registry_id_registries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("registry_id", name=op.f("pk_vuln_policies")),
    )
    op.create_table(
        "vuln_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("subject_digest", sa.String(length=150), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("inputs", sa.Text(), nullable=False),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.Column("computed_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repositories.id"],
            name=op.f("fk_vuln_reports_repository_id_repositories"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["vuln_database_versions.id"],
            name=op.f("fk_vuln_reports_version_id_vuln_database_versions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vuln_reports")),
        sa.UniqueConstraint(
            "repository_id",
            "subject_digest",
            "version_id",
            name=op.f("uq_vuln_reports_repository_id"),
        ),
    )


def downgrade():
    op.drop_table("vuln_reports")
    op.drop_table("vuln_policies")
    with op.batch_alter_table("vuln_allowances", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_vuln_allowances_registry_id"))

    op.drop_table("vuln_allowances")
    with op.batch_alter_table("affected_packages", schema=None) as batch_op:
        batch_op.drop_index("ix_affected_packages_package")
        batch_op.drop_index(batch_op.f("ix_affected_packages_advisory_id"))

    op.drop_table("affected_packages")
    op.drop_table("advisories")
    with op.batch_alter_table("vuln_database_versions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_vuln_database_versions_content_digest"))

    op.drop_table("vuln_database_versions")
