"""`flask python ...`: yank, unyank and delete files or releases, for administrators."""

from __future__ import annotations

import click

from app.access.policy import find_registry
from app.errors import CoreError
from app.models.transaction import unit_of_work
from app.registry.python import withdraw
from app.registry.python.files import Target


def _target(where: str) -> Target:
    org, sep, name = where.partition("/")
    registry = find_registry(org, name) if sep else None
    if registry is None:
        raise click.ClickException(f"registry {where!r} does not exist (give it as ORG/REGISTRY)")
    return Target(org, name, registry)


def _which(version: str | None, filename: str | None) -> dict[str, str | None]:
    if (version is None) == (filename is None):
        raise click.UsageError("give exactly one of --version or --file")
    return {"version": version, "filename": filename}


_where = click.argument("where", metavar="ORG/REGISTRY")
_project = click.argument("project")
_version = click.option("--version", "version", help="a whole release")
_file = click.option("--file", "filename", help="one file, by filename")


def _report(verb: str, files) -> None:
    for f in files:
        click.echo(f"{verb} {f.filename}")


@click.command("yank")
@_where
@_project
@_version
@_file
@click.option("--reason", default=None, help="shown by pip and uv when they install it anyway")
def yank(where: str, project: str, version, filename, reason) -> None:
    """Yank (PEP 592): installers skip the files unless pinned with ==."""
    try:
        which = _which(version, filename)
        with unit_of_work():
            files = withdraw.set_yanked(_target(where), project, reason=reason, **which)
    except CoreError as exc:
        raise click.ClickException(exc.message) from None
    _report("yanked", files)


@click.command("unyank")
@_where
@_project
@_version
@_file
def unyank(where: str, project: str, version, filename) -> None:
    """Undo a yank."""
    try:
        with unit_of_work():
            files = withdraw.set_yanked(
                _target(where), project, yanked=False, **_which(version, filename)
            )
    except CoreError as exc:
        raise click.ClickException(exc.message) from None
    _report("unyanked", files)


@click.command("delete")
@_where
@_project
@_version
@_file
@click.option("--yes", is_flag=True, help="do not ask for confirmation")
def delete(where: str, project: str, version, filename, yes: bool) -> None:
    """Delete files for good: their manifests go, their filenames can never be used again."""
    which = _which(version, filename)
    if not yes:
        click.confirm(
            f"Delete {filename or f'release {version}'} of {project}? Filenames are never reusable",
            abort=True,
        )
    try:
        with unit_of_work():
            files = withdraw.delete(_target(where), project, **which)
    except CoreError as exc:
        raise click.ClickException(exc.message) from None
    _report("deleted", files)


COMMANDS = (yank, unyank, delete)
