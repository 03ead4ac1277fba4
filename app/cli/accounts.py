"""`flask user ...` and `flask token ...`: people, robots' tokens, and their secrets."""

from __future__ import annotations

from datetime import timedelta

import click
from flask.cli import AppGroup

from app.access import access_tokens, accounts, tenancy
from app.cli.unit import command, existing_user
from app.models.base import utcnow

user_group = AppGroup("user", help="Manage users.")
token_group = AppGroup("token", help="Manage access tokens.")


@user_group.command("create")
@click.argument("username")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--site-admin", is_flag=True)
@command
def user_create(username: str, password: str, site_admin: bool) -> None:
    tenancy.create_user(username, password, site_admin)
    click.echo(f"created user {username}")


@token_group.command("create")
@click.argument("username")
@click.argument("name")
@click.option("--scope", type=click.Choice(["read", "read-write"]), default="read-write")
@click.option("--registry", "registries", multiple=True, help="limit to org/registry")
@click.option("--expires-days", type=int, default=None)
@command
def token_create(
    username: str, name: str, scope: str, registries: tuple[str, ...], expires_days: int | None
) -> None:
    """Create a token for a user or robot and print it (shown only this once)."""
    user = existing_user(username)
    expires = utcnow() + timedelta(days=expires_days) if expires_days else None
    _row, secret = access_tokens.create(
        user, name, scope, list(registries) or None, expires_at=expires
    )
    click.echo(secret)


@user_group.command("password")
@click.argument("username")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@command
def user_password(username: str, password: str) -> None:
    """Set a user's password; tokens minted from the old one stop working."""
    user = existing_user(username)
    accounts.reset_password(user, password)
    click.echo(f"password of {username} changed")


COMMANDS = (user_group, token_group)
