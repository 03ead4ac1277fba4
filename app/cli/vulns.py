"""`flask vulns`: load OSV vulnerability records, and show the database's version and age."""

from __future__ import annotations

import json
from pathlib import Path

import click
from flask.cli import AppGroup

from app.errors import Invalid
from app.models.transaction import unit_of_work
from app.registry.vulnerabilities import importer, status

vulns_group = AppGroup("vulns", help="The offline vulnerability database (OSV records).")


@vulns_group.command("import")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--quiet", is_flag=True, help="Do not list skipped records.")
def vulns_import(path: Path, quiet: bool) -> None:
    """Import OSV records from a directory (searched recursively) or a zip file."""
    try:
        with unit_of_work():
            result = importer.import_path(path)
    except Invalid as exc:
        raise click.ClickException(exc.message) from None
    if not quiet:
        for problem in result.problems:
            click.echo(f"skipped {problem}", err=True)
    if result.unchanged:
        click.echo(
            f"{result.advisories} advisories read, nothing changed; database version "
            f"{result.version}; skipped {result.skipped} malformed record(s)"
        )
        return
    click.echo(
        f"database version {result.version}: {result.advisories} advisories read, "
        f"{result.added} added, {result.updated} updated; skipped {result.skipped} "
        "malformed record(s)"
    )


@vulns_group.command("status")
def vulns_status() -> None:
    """The database's current version, its age and size, as JSON."""
    click.echo(json.dumps(status.database_status(with_source=True), indent=2))


COMMANDS = (vulns_group,)
