"""python attestations: a file's PEP 740 provenance and the CI workload that uploaded it

python_files.provenance_sha256 names the provenance object (stored as a layer of the file's
attestation referrer); publisher is that provenance's publisher; workload_identity holds the
OIDC issuer, subject and repository/workflow claims of an upload made through a trust policy,
which access_tokens.workload_identity keeps for tokens a trust policy's exchange issued.

Revision ID: 0012_python_attestations
Revises: 0011_vulnerabilities
Create Date: 2026-11-25 17:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0012_python_attestations"
down_revision = "0011_vulnerabilities"
branch_labels = None
depends_on = None

COLUMNS = ("provenance_sha256", "publisher", "workload_identity")


def upgrade():
    with op.batch_alter_table("python_files") as batch:
        batch.add_column(sa.Column("provenance_sha256", sa.String(64), nullable=True))
        batch.add_column(sa.Column("publisher", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("workload_identity", sa.JSON(), nullable=True))
    with op.batch_alter_table("access_tokens") as batch:
        batch.add_column(sa.Column("workload_identity", sa.JSON(), nullable=True))


def downgrade():
    if op.get_bind().dialect.name == "sqlite":
        # SQLite 3.35+ drops a column in place, without a batch copy of the table.
        for column in COLUMNS:
            op.execute(f"ALTER TABLE python_files DROP COLUMN {column}")
        op.execute("ALTER TABLE access_tokens DROP COLUMN workload_identity")
    else:
        for column in COLUMNS:
            op.drop_column("python_files", column)
        op.drop_column("access_tokens", "workload_identity")
