"""`flask audit`: purge events past their retention, or export the log as JSON lines."""

from __future__ import annotations

import json

import click
from flask import current_app
from flask.cli import AppGroup

from app.access import audit_log
from app.models.transaction import unit_of_work

audit_group = AppGroup("audit", help="The audit log.")


@audit_group.command("purge")
@click.option(
    "--days",
    type=click.IntRange(min=1),
    default=None,
    help="Delete events older than this (default: CARGOHOLD_AUDIT_RETENTION_DAYS).",
)
def audit_purge(days: int | None) -> None:
    """Delete audit events older than the retention period."""
    days = days or current_app.extensions["cargohold.settings"].audit_retention_days
    if days <= 0:
        click.echo("audit events are kept for ever (CARGOHOLD_AUDIT_RETENTION_DAYS is 0)")
        return
    with unit_of_work():
        removed = audit_log.purge(days)
    click.echo(f"purged {removed} audit event(s) older than {days} day(s)")


@audit_group.command("export")
@click.option("--org", default=None, help="One organisation's events; '-' for those of none.")
def audit_export(org: str | None) -> None:
    """Every audit event as JSON lines, newest first."""
    filters = audit_log.filters_from({"org": org or ""}, allow_org=True)
    for event in audit_log.export(filters):
        click.echo(json.dumps(audit_log.as_json(event), separators=(",", ":")))


COMMANDS = (audit_group,)
