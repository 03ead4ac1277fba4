"""What every command shares: one unit of work, and a refusal from the core as one line on the
terminal, no traceback."""

from __future__ import annotations

import functools

import click

from app.access import tenancy
from app.errors import CoreError, NotFound
from app.models import User
from app.models.transaction import unit_of_work


def command(fn):
    """One unit of work per command; a refusal is the command's error message."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            with unit_of_work():
                return fn(*args, **kwargs)
        except CoreError as exc:
            raise click.ClickException(exc.message) from None

    return wrapper


def existing_user(username: str) -> User:
    user = tenancy.find_user(username)
    if user is None:
        raise NotFound(f"user {username!r} does not exist")
    return user
