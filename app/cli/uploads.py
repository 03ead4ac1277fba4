"""`flask uploads sweep`: abort upload sessions clients abandoned (run it from cron)."""

from __future__ import annotations

from datetime import timedelta

import click
from flask import current_app
from flask.cli import AppGroup

from app.models.transaction import unit_of_work
from app.registry.uploads import sweep_abandoned

uploads_group = AppGroup("uploads", help="Maintain upload sessions.")


@uploads_group.command("sweep")
@click.option("--older-than-hours", type=float, default=24.0, show_default=True)
def uploads_sweep(older_than_hours: float) -> None:
    """Abort upload sessions with no activity for this long, at least 10 minutes (run it from
    cron)."""
    store = current_app.extensions["cargohold.store"]
    with unit_of_work():
        count = sweep_abandoned(store, timedelta(hours=older_than_hours))
    click.echo(f"aborted {count} abandoned upload(s)")


COMMANDS = (uploads_group,)
