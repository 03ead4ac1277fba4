"""credential epochs: a counter per user, bumped by a password change, that every registry
token and refresh token minted from the password carries and is checked against

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
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("credential_epoch")
