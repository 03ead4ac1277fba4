"""`flask org ...`, `flask registry ...`, `flask robot ...`: organisations and who may do what."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from app.access import tenancy
from app.cli.unit import command, existing_user

ROLES = click.Choice(["viewer", "writer", "admin"])

org_group = AppGroup("org", help="Manage organisations and their members.")
registry_group = AppGroup("registry", help="Manage registries.")
robot_group = AppGroup("robot", help="Manage robot accounts.")


@org_group.command("create")
@click.argument("name")
@click.option("--owner", required=True, help="username of the first admin")
@command
def org_create(name: str, owner: str) -> None:
    user = existing_user(owner)
    tenancy.create_org(name, user)
    click.echo(f"created organisation {name}, admin {owner}")


@org_group.command("member")
@click.argument("org")
@click.argument("username")
@click.option("--role", type=ROLES, default="writer")
@command
def org_member(org: str, username: str, role: str) -> None:
    tenancy.change_member(org, username, role)
    click.echo(f"{username} is {role} of {org}")


@registry_group.command("create")
@click.argument("org")
@click.argument("name")
@click.option("--public", is_flag=True, help="anyone may pull, without logging in")
@command
def registry_create(org: str, name: str, public: bool) -> None:
    tenancy.create_registry(org, name, public)
    click.echo(f"created registry {org}/{name}{' (public)' if public else ''}")


@registry_group.command("grant")
@click.argument("org")
@click.argument("registry")
@click.argument("username")
@click.option("--role", type=ROLES, default="writer")
@command
def registry_grant(org: str, registry: str, username: str, role: str) -> None:
    """Give a user or robot a role on one registry."""
    tenancy.grant_registry(org, registry, username, role)
    click.echo(f"{username} is {role} of {org}/{registry}")


@robot_group.command("create")
@click.argument("org")
@click.argument("name")
@click.option("--description", default="")
@command
def robot_create(org: str, name: str, description: str) -> None:
    robot = tenancy.create_robot(org, name, description)
    click.echo(f"created robot {robot.username}")


COMMANDS = (org_group, registry_group, robot_group)
