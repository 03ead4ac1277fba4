"""tenancy: robots, registry grants, access tokens, trust policies, invitations, throttling

Revision ID: c41e7b2d9a10
Revises: fce862eb98ea
Create Date: 2026-11-25 09:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "c41e7b2d9a10"
down_revision = "fce862eb98ea"
branch_labels = None
depends_on = None


def upgrade():
    # Plain ADD COLUMN, not a batch table rebuild: SQLite would have to drop `users`, which
    # other tables reference, and a NULL-default column needs no rebuild on either database.
    if op.get_bind().dialect.name == "sqlite":
        # SQLite cannot add a named constraint to an existing table, but takes an inline one.
        op.execute("ALTER TABLE users ADD COLUMN robot_org_id INTEGER REFERENCES organisations (id)")
    else:
        op.add_column("users", sa.Column("robot_org_id", sa.Integer(), nullable=True))
        op.create_foreign_key(
            op.f("fk_users_robot_org_id_organisations"),
            "users",
            "organisations",
            ["robot_org_id"],
            ["id"],
        )
    op.add_column("users", sa.Column("description", sa.String(length=255), nullable=True))
    op.create_index(op.f("ix_users_robot_org_id"), "users", ["robot_org_id"])

    op.create_table(
        "registry_grants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("registry_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["registry_id"], ["registries.id"], name=op.f("fk_registry_grants_registry_id_registries")
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_registry_grants_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registry_grants")),
        sa.UniqueConstraint("registry_id", "user_id", name=op.f("uq_registry_grants_registry_id")),
    )
    op.create_index(op.f("ix_registry_grants_registry_id"), "registry_grants", ["registry_id"])
    op.create_index(op.f("ix_registry_grants_user_id"), "registry_grants", ["user_id"])

    op.create_table(
        "access_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=32), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("registries", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.Column("last_used_at", sa.DateTime(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_access_tokens_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_tokens")),
        sa.UniqueConstraint("public_id", name=op.f("uq_access_tokens_public_id")),
    )
    op.create_index(op.f("ix_access_tokens_user_id"), "access_tokens", ["user_id"])

    op.create_table(
        "trust_policies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("robot_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("issuer", sa.String(length=255), nullable=False),
        sa.Column("audience", sa.String(length=255), nullable=False),
        sa.Column("claims", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_trust_policies_organisation_id_organisations"),
        ),
        sa.ForeignKeyConstraint(["robot_id"], ["users.id"], name=op.f("fk_trust_policies_robot_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trust_policies")),
    )
    op.create_index(op.f("ix_trust_policies_organisation_id"), "trust_policies", ["organisation_id"])
    op.create_index(op.f("ix_trust_policies_robot_id"), "trust_policies", ["robot_id"])

    op.create_table(
        "invitations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("invitee", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("invited_by_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("answered_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_invitations_organisation_id_organisations"),
        ),
        sa.ForeignKeyConstraint(
            ["invited_by_id"], ["users.id"], name=op.f("fk_invitations_invited_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invitations")),
    )
    op.create_index(op.f("ix_invitations_organisation_id"), "invitations", ["organisation_id"])
    op.create_index(op.f("ix_invitations_invitee"), "invitations", ["invitee"])

    op.create_table(
        "login_throttle",
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_start", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_login_throttle")),
    )


def downgrade():
    op.drop_table("login_throttle")
    op.drop_table("invitations")
    op.drop_table("trust_policies")
    op.drop_table("access_tokens")
    op.drop_table("registry_grants")
    op.drop_index(op.f("ix_users_robot_org_id"), "users")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("description")
        batch.drop_column("robot_org_id")
