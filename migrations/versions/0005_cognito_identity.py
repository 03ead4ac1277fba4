"""cognito identity: users linked to a Cognito user pool's `sub`

Revision ID: 0005_cognito_identity
Revises: 0004_credential_epochs
Create Date: 2026-11-25 14:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0005_cognito_identity"
down_revision = "0004_credential_epochs"
branch_labels = None
depends_on = None


def upgrade():
    # A NULL-default column and a unique index: no table rebuild on SQLite or PostgreSQL.
    op.add_column("users", sa.Column("cognito_sub", sa.String(length=64), nullable=True))
    op.create_index(op.f("ix_users_cognito_sub"), "users", ["cognito_sub"], unique=True)


def downgrade():
    op.drop_index(op.f("ix_users_cognito_sub"), table_name="users")
    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_column("cognito_sub")
