"""The web console: server-rendered pages for people, on the same core and the same gate as the
API. Each route declares its requirement with `@requires(action, kind)` (app/gate.py); the
caller the gate sees is the person the console's session cookie names, on console routes only.
"""

from __future__ import annotations

from flask import Flask

# The view modules register their routes on the blueprint when imported.
from app.console import (  # noqa: F401
    errors,
    session,
    templating,
    views_account,
    views_audit,
    views_cognito,
    views_home,
    views_org,
    views_python,
    views_registry,
    views_repository,
    views_signing,
)
from app.console.blueprint import bp


def init_app(app: Flask) -> None:
    session.init_app(app)
    errors.init_app(app)
    app.register_blueprint(bp)


__all__ = ["bp", "init_app"]
