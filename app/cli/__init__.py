"""`flask` commands for an administrator, one module per area."""

from __future__ import annotations

from flask import Flask

from app.cli import accounts, audit, bootstrap, gc, quotas, retention, tenants, uploads, vulns


def register(app: Flask) -> None:
    for command in (
        *bootstrap.COMMANDS,
        *accounts.COMMANDS,
        *tenants.COMMANDS,
        *uploads.COMMANDS,
        *gc.COMMANDS,
        *audit.COMMANDS,
        *vulns.COMMANDS,
        *quotas.COMMANDS,
        *retention.COMMANDS,
    ):
        app.cli.add_command(command)
