"""`flask retention run`: apply the registries' retention policies now (or list what they
would remove); the background worker applies them through `run_due`."""

from __future__ import annotations

import json
from datetime import timedelta

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import select, update

from app.access import audit
from app.models import Organisation, Registry, RetentionPolicy, db
from app.models.base import utcnow
from app.models.transaction import unit_of_work
from app.registry import retention

retention_group = AppGroup("retention", help="Retention policies of the registries.")


def _policies(registry: str | None) -> list[tuple[int, str]]:
    """(policy id, `<org>/<registry>/` prefix) of the enabled policies, optionally of one
    registry."""
    query = (
        select(RetentionPolicy.id, Organisation.name, Registry.name)
        .join(Registry, Registry.id == RetentionPolicy.registry_id)
        .join(Organisation, Organisation.id == Registry.organisation_id)
        .where(RetentionPolicy.enabled.is_(True))
        .order_by(RetentionPolicy.id)
    )
    if registry is not None:
        org, _, name = registry.partition("/")
        query = query.where(Organisation.name == org, Registry.name == name)
    rows = db.session.execute(query).all()
    db.session.rollback()
    return [(pid, f"{org}/{reg}/") for pid, org, reg in rows]


def _run(policy_id: int, prefix: str, dry_run: bool, echo=None) -> int:
    """Apply one policy, committing after each repository; returns how much it removed."""
    policy = db.session.get(RetentionPolicy, policy_id)
    if policy is None:
        return 0
    removed = 0
    checkpoint = db.session.rollback if dry_run else db.session.commit
    # Its removals are audited as the policy's, whoever runs it.
    with audit.acting_as(audit.Actor("system", f"retention-policy:{policy_id}")), unit_of_work():
        for removal in retention.apply(policy, prefix, dry_run=dry_run, checkpoint=checkpoint):
            removed += 1
            if echo is not None:
                echo(removal)
        if not dry_run:
            db.session.execute(
                update(RetentionPolicy)
                .where(RetentionPolicy.id == policy_id)
                .values(last_run_removed=removed)
            )
    return removed


def run_due() -> int:
    """The worker's pass: every enabled policy whose last run is older than
    CARGOHOLD_RETENTION_INTERVAL_SECONDS, each claimed by one sweeper only."""
    settings = current_app.extensions["cargohold.settings"]
    interval = timedelta(seconds=settings.retention_interval_seconds)
    removed = 0
    for policy_id, prefix in _policies(None):
        with unit_of_work():
            claimed = retention.claim(policy_id, interval, utcnow())
        if claimed:
            removed += _run(policy_id, prefix, dry_run=False)
    return removed


@retention_group.command("run")
@click.option("--dry-run", is_flag=True, help="List what would be removed; change nothing.")
@click.option("--registry", metavar="ORG/REGISTRY", help="Only this registry's policies.")
def retention_run(dry_run: bool, registry: str | None) -> None:
    """Apply every enabled retention policy now, whatever its last run."""
    if registry is not None and registry.count("/") != 1:
        raise click.BadParameter("give the registry as ORG/REGISTRY", param_hint="--registry")

    def echo(removal: retention.Removal) -> None:
        click.echo(json.dumps(removal.as_json()))

    total = 0
    for policy_id, prefix in _policies(registry):
        if not dry_run:
            with unit_of_work():
                db.session.execute(
                    update(RetentionPolicy)
                    .where(RetentionPolicy.id == policy_id)
                    .values(last_run_at=utcnow())
                )
        total += _run(policy_id, prefix, dry_run, echo)
    verb = "would remove" if dry_run else "removed"
    click.echo(f"{verb} {total} tag(s) and manifest(s)", err=True)


COMMANDS = (retention_group,)
