"""`flask` commands for an administrator's first steps."""

from __future__ import annotations

import secrets

import click
from flask import Flask, current_app
from flask_migrate import upgrade

from app.access import tenancy


def _fail_on_value_error(fn):
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


def register(app: Flask) -> None:
    @app.cli.command("bootstrap")
    def bootstrap() -> None:
        """Apply migrations; create the admin, first organisation and registry if missing."""
        upgrade()
        settings = current_app.extensions["cargohold.settings"]
        user = tenancy.find_user(settings.admin_user)
        if user is None:
            password = settings.admin_password or secrets.token_urlsafe(18)
            user = tenancy.create_user(settings.admin_user, password, site_admin=True)
            if not settings.admin_password:
                path = settings.data_dir / "admin-password"
                path.write_text(password + "\n")
                path.chmod(0o600)
                click.echo(f"Generated password for {user.username}: {password} (kept in {path})")
        if tenancy.find_org(settings.bootstrap_org) is None:
            tenancy.create_org(settings.bootstrap_org, user)
        from app.access.policy import find_registry

        if find_registry(settings.bootstrap_org, settings.bootstrap_registry) is None:
            tenancy.create_registry(settings.bootstrap_org, settings.bootstrap_registry)
        click.echo(
            f"Ready: organisation {settings.bootstrap_org!r}, registry "
            f"{settings.bootstrap_org}/{settings.bootstrap_registry}, admin {user.username!r}"
        )

    @app.cli.group("user")
    def user_group() -> None:
        """Manage users."""

    @user_group.command("create")
    @click.argument("username")
    @click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
    @click.option("--site-admin", is_flag=True)
    @_fail_on_value_error
    def user_create(username: str, password: str, site_admin: bool) -> None:
        tenancy.create_user(username, password, site_admin)
        click.echo(f"created user {username}")

    @app.cli.group("org")
    def org_group() -> None:
        """Manage organisations and their members."""

    @org_group.command("create")
    @click.argument("name")
    @click.option("--owner", required=True, help="username of the first admin")
    @_fail_on_value_error
    def org_create(name: str, owner: str) -> None:
        user = tenancy.find_user(owner)
        if user is None:
            raise ValueError(f"user {owner!r} does not exist")
        tenancy.create_org(name, user)
        click.echo(f"created organisation {name}, admin {owner}")

    @org_group.command("member")
    @click.argument("org")
    @click.argument("username")
    @click.option("--role", type=click.Choice(["viewer", "writer", "admin"]), default="writer")
    @_fail_on_value_error
    def org_member(org: str, username: str, role: str) -> None:
        tenancy.set_member(org, username, role)
        click.echo(f"{username} is {role} of {org}")

    @app.cli.group("registry")
    def registry_group() -> None:
        """Manage registries."""

    @registry_group.command("create")
    @click.argument("org")
    @click.argument("name")
    @click.option("--public", is_flag=True, help="anyone may pull, without logging in")
    @_fail_on_value_error
    def registry_create(org: str, name: str, public: bool) -> None:
        tenancy.create_registry(org, name, public)
        click.echo(f"created registry {org}/{name}{' (public)' if public else ''}")
