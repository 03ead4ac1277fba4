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
        except (ValueError, LookupError) as exc:
            raise click.ClickException(str(exc).strip("'\"")) from None

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


def register(app: Flask) -> None:
    @app.cli.command("bootstrap")
    def bootstrap() -> None:
        """Apply migrations; create the admin, first organisation and registry if missing.
        Safe when several replicas run it at once: they take turns under a lock."""
        from app.models import db
        from app.ops.schema import migration_lock

        settings = current_app.extensions["cargohold.settings"]
        with migration_lock(db.engine, settings.data_dir):
            upgrade()
            _first_steps(settings)

    def _first_steps(settings) -> None:
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
        tenancy.change_member(org, username, role)
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

    @registry_group.command("grant")
    @click.argument("org")
    @click.argument("registry")
    @click.argument("username")
    @click.option("--role", type=click.Choice(["viewer", "writer", "admin"]), default="writer")
    @_fail_on_value_error
    def registry_grant(org: str, registry: str, username: str, role: str) -> None:
        """Give a user or robot a role on one registry."""
        tenancy.grant_registry(org, registry, username, role)
        click.echo(f"{username} is {role} of {org}/{registry}")

    @app.cli.group("robot")
    def robot_group() -> None:
        """Manage robot accounts."""

    @robot_group.command("create")
    @click.argument("org")
    @click.argument("name")
    @click.option("--description", default="")
    @_fail_on_value_error
    def robot_create(org: str, name: str, description: str) -> None:
        robot = tenancy.create_robot(org, name, description)
        click.echo(f"created robot {robot.username}")

    @app.cli.group("token")
    def token_group() -> None:
        """Manage access tokens."""

    @token_group.command("create")
    @click.argument("username")
    @click.argument("name")
    @click.option("--scope", type=click.Choice(["read", "read-write"]), default="read-write")
    @click.option("--registry", "registries", multiple=True, help="limit to org/registry")
    @click.option("--expires-days", type=int, default=None)
    @_fail_on_value_error
    def token_create(
        username: str, name: str, scope: str, registries: tuple[str, ...], expires_days: int | None
    ) -> None:
        """Create a token for a user or robot and print it (shown only this once)."""
        from datetime import timedelta

        from app.access import access_tokens
        from app.models.base import utcnow

        user = tenancy.find_user(username)
        if user is None:
            raise LookupError(f"user {username!r} does not exist")
        expires = utcnow() + timedelta(days=expires_days) if expires_days else None
        _row, secret = access_tokens.create(
            user, name, scope, list(registries) or None, expires_at=expires
        )
        click.echo(secret)

    @app.cli.group("uploads")
    def uploads_group() -> None:
        """Maintain upload sessions."""

    @uploads_group.command("sweep")
    @click.option("--older-than-hours", type=float, default=24.0, show_default=True)
    def uploads_sweep(older_than_hours: float) -> None:
        """Abort upload sessions opened longer ago than this (run it from cron)."""
        from datetime import timedelta

        from app.registry.uploads import sweep_abandoned

        store = current_app.extensions["cargohold.store"]
        count = sweep_abandoned(store, timedelta(hours=older_than_hours))
        click.echo(f"aborted {count} abandoned upload(s)")
