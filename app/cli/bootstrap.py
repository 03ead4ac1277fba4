"""`flask bootstrap`: migrations, then the admin, first organisation and registry if missing."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext
from flask_migrate import upgrade

from app.access import tenancy
from app.access.passwords import generate_password
from app.access.policy import find_registry
from app.filemodes import write_private
from app.models import db
from app.models.transaction import unit_of_work
from app.ops.schema import migration_lock


def _announce_password(username: str, password: str, path: Path) -> None:
    # Output that is not a terminal usually ends up in a log (journald, docker logs, CI), where
    # a password does not belong: point at the private file instead.
    if sys.stdout.isatty():
        click.echo(f"Generated password for {username}: {password} (kept in {path})")
    else:
        click.echo(f"Generated a password for {username}, readable only by this user in {path}")


@click.command("bootstrap")
@with_appcontext
def bootstrap() -> None:
    """Apply migrations; create the admin, first organisation and registry if missing."""
    settings = current_app.extensions["cargohold.settings"]
    # Safe when several replicas run it at once: they take turns under a lock.
    with migration_lock(db.engine, settings.data_dir):
        upgrade()
        with unit_of_work():
            _bootstrap(settings)


def _bootstrap(settings) -> None:
    user = tenancy.find_user(settings.admin_user)
    if user is None:
        password = settings.admin_password or generate_password()
        user = tenancy.create_user(settings.admin_user, password, site_admin=True)
        if not settings.admin_password:
            path = settings.data_dir / "admin-password"
            write_private(path, password + "\n")
            _announce_password(user.username, password, path)
    if tenancy.find_org(settings.bootstrap_org) is None:
        tenancy.create_org(settings.bootstrap_org, user)
    if find_registry(settings.bootstrap_org, settings.bootstrap_registry) is None:
        tenancy.create_registry(settings.bootstrap_org, settings.bootstrap_registry)
    click.echo(
        f"Ready: organisation {settings.bootstrap_org!r}, registry "
        f"{settings.bootstrap_org}/{settings.bootstrap_registry}, admin {user.username!r}"
    )


COMMANDS = (bootstrap,)
