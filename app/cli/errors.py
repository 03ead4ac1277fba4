"""How a refusal from the core reaches the terminal: one line, no traceback."""

from __future__ import annotations

import functools

import click


def fail_on_value_error(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (ValueError, LookupError) as exc:
            raise click.ClickException(str(exc).strip("'\"")) from None

    return wrapper
