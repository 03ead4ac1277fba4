"""`flask bootstrap`: migrations, then the admin, first organisation and registry if missing."""

from __future__ import annotations

import secrets

import click
from flask import current_app
from flask.cli import with_appcontext
from flask_migrate import upgrade

from app.access import tenancy
from app.access.policy import find_registry


@click.command("bootstrap")
@with_appcontext
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
    if find_registry(settings.bootstrap_org, settings.bootstrap_registry) is None:
        tenancy.create_registry(settings.bootstrap_org, settings.bootstrap_registry)
    click.echo(
        f"Ready: organisation {settings.bootstrap_org!r}, registry "
        f"{settings.bootstrap_org}/{settings.bootstrap_registry}, admin {user.username!r}"
    )


COMMANDS = (bootstrap,)
