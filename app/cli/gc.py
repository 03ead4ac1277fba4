"""`flask gc`: run the garbage collector, show its figures, reconcile storage, or keep running."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import click
from flask import current_app
from flask.cli import AppGroup

from app.access import audit_log
from app.cli.retention import run_due
from app.models.transaction import unit_of_work
from app.registry import gc, manifest_store
from app.registry.uploads import sweep_abandoned

gc_group = AppGroup("gc", help="Garbage collection of unreferenced content.")


def _store():
    return current_app.extensions["cargohold.store"]


def run_once() -> gc.SweepResult:
    """One pass of the background work: expire abandoned uploads, apply the retention policies
    that are due, collect garbage, and purge audit events past their retention."""
    settings = current_app.extensions["cargohold.settings"]
    with unit_of_work():
        sweep_abandoned(_store(), timedelta(seconds=settings.upload_max_age_seconds))
    run_due()
    result = gc.sweep(_store())
    with unit_of_work():
        audit_log.purge(settings.audit_retention_days)
    return result


@gc_group.command("run")
@click.option("--batch-size", type=click.IntRange(min=1, max=100_000), default=None)
def gc_run(batch_size: int | None) -> None:
    """Delete content whose grace period has passed and that nothing references."""
    result = gc.sweep(_store(), batch_size)
    click.echo(
        f"examined {result.examined} candidate(s): deleted {len(result.deleted)} blob(s), "
        f"{result.bytes_reclaimed} byte(s); kept {result.kept}; postponed {result.postponed}"
    )


@gc_group.command("status")
def gc_status() -> None:
    """Candidates pending, bytes reclaimed so far, the last run."""
    figures = gc.status()
    figures["last_run_at"] = figures["last_run_at"] and figures["last_run_at"].isoformat() + "Z"
    click.echo(json.dumps(figures, indent=2))


@gc_group.command("reconcile")
def gc_reconcile() -> None:
    """Delete stored objects no row knows, older than the grace period (lists all storage)."""
    removed = gc.reconcile(_store())
    click.echo(f"removed {len(removed)} orphaned object(s)")


@gc_group.command("index")
def gc_index() -> None:
    """Record what manifests stored before garbage collection existed reference (run once
    after upgrading; idempotent)."""
    with unit_of_work():
        count = manifest_store.index_references(_store())
    click.echo(f"indexed {count} manifest(s)")


@gc_group.command("worker")
@click.option("--once", is_flag=True, help="One pass, then exit.")
def gc_worker(once: bool) -> None:
    """Expire abandoned uploads and collect garbage every CARGOHOLD_GC_INTERVAL_SECONDS."""
    interval = current_app.extensions["cargohold.settings"].gc_interval_seconds
    while True:
        result = run_once()
        if result.deleted:
            click.echo(f"deleted {len(result.deleted)} blob(s), {result.bytes_reclaimed} byte(s)")
        if once:
            return
        time.sleep(interval)


COMMANDS = (gc_group,)
