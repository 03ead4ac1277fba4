"""The web console: server-rendered pages for people, on the same core and policy as the API.

Every route is declared with `page(...)` in `app.console.gate`, naming the action and resource
kind it needs; that one table drives the check before each view and the authorization test.
"""

from __future__ import annotations

from flask import Flask

# The view modules register their routes on the blueprint when imported.
from app.console import (  # noqa: F401
    errors,
    session,
    templating,
    views_account,
    views_home,
    views_org,
    views_python,
    views_registry,
    views_repository,
)
from app.console.gate import PAGES, bp


def init_app(app: Flask) -> None:
    session.init_app(app)
    errors.init_app(app)
    app.register_blueprint(bp)


__all__ = ["PAGES", "bp", "init_app"]
