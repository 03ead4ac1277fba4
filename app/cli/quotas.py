"""`flask quota`: recount storage usage, show it, set limits."""

from __future__ import annotations

import json

import click
from flask.cli import AppGroup

from app.access.policy import find_org, find_registry
from app.errors import CoreError
from app.models.transaction import unit_of_work
from app.registry import quotas

quota_group = AppGroup("quota", help="Storage quotas of organisations and registries.")


def _scope(path: str) -> tuple[str, int]:
    """`org` or `org/registry` as a scope."""
    org, _, registry = path.partition("/")
    if registry:
        found = find_registry(org, registry)
        if found is None:
            raise click.ClickException(f"registry {path} does not exist")
        return quotas.REGISTRY, found.id
    org_row = find_org(org)
    if org_row is None:
        raise click.ClickException(f"organisation {org} does not exist")
    return quotas.ORG, org_row.id


@quota_group.command("recount")
@click.argument("scope", required=False)
def quota_recount(scope: str | None) -> None:
    """Rebuild usage from the links and manifests stored, for SCOPE (`org` or `org/registry`)
    or every organisation and registry; reports each figure that had drifted."""
    scopes = [_scope(scope)] if scope else quotas.all_scopes()
    drifted = 0
    for kind, owner_id in scopes:
        # One transaction per scope: pushes elsewhere wait on one scope's row at a time.
        with unit_of_work():
            before, after = quotas.recount_scope(kind, owner_id)
            name = quotas.usage(kind, owner_id).name
        if before != after:
            drifted += 1
            click.echo(f"{kind} {name}: {before} -> {after} bytes")
    click.echo(f"recounted {len(scopes)} scope(s), {drifted} had drifted")


@quota_group.command("show")
@click.argument("scope", required=False)
def quota_show(scope: str | None) -> None:
    """Limits and usage of SCOPE (`org` or `org/registry`), or of every one, as JSON."""
    with unit_of_work():
        scopes = [_scope(scope)] if scope else quotas.all_scopes()
        figures = [quotas.usage(kind, owner_id).as_json() for kind, owner_id in scopes]
    click.echo(json.dumps(figures, indent=2))


@quota_group.command("set")
@click.argument("scope")
@click.argument("limit")
def quota_set(scope: str, limit: str) -> None:
    """Set SCOPE's (`org` or `org/registry`) limit to LIMIT bytes, or `none` for no limit."""
    if limit.lower() == "none":
        value = None
    elif limit.isdigit():
        value = int(limit)
    else:
        raise click.BadParameter("a whole number of bytes, or none", param_hint="LIMIT")
    with unit_of_work():
        kind, owner_id = _scope(scope)
        try:
            usage = quotas.set_limit(kind, owner_id, value)
        except CoreError as exc:
            raise click.ClickException(exc.message) from None
    click.echo(json.dumps(usage.as_json()))


COMMANDS = (quota_group,)
