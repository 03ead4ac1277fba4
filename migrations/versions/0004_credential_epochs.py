"""credential epochs: users.credential_epoch, bumped by every password change

Registry tokens and refresh tokens minted from a password carry it and are checked against it.

Revision ID: 0004_credential_epochs
Revises: a7d3e9c41b02
Create Date: 2026-11-25 14:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0004_credential_epochs'
down_revision = 'a7d3e9c41b02'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column(
        "users",
        sa.Column("credential_epoch", sa.Integer(), nullable=False, server_default="0"),
    )


def downgrade():
    if op.get_bind().dialect.name == "sqlite":
        # SQLite 3.35+ drops a column in place; a batch copy of `users` would trip the foreign
        # keys that point at it.
        op.execute("ALTER TABLE users DROP COLUMN credential_epoch")
    else:
        op.drop_column("users", "credential_epoch")
