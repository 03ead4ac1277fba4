"""Friendly HTML error pages for the console (and for browsers lost outside the protocols).
They say what happened and where to go next; they never echo input or internals."""

from __future__ import annotations

from flask import Flask, render_template, request
from werkzeug.exceptions import HTTPException

from app.console.gate import bp
from app.models import db

TITLES = {
    400: "That request could not be handled",
    403: "You may not do that",
    404: "Nothing here",
    405: "Not possible here",
    429: "Too many attempts",
    500: "Something went wrong",
}
# Paths answered in a protocol's own error format, never with an HTML page.
PROTOCOL_PREFIXES = ("/v2", "/api/", "/auth/")


def render_error(status: int, detail: str | None = None):
    title = TITLES.get(status, "Something went wrong")
    return render_template("console/error.html", status=status, title=title, detail=detail), status


@bp.app_errorhandler(HTTPException)
def _http_error(exc: HTTPException):
    if request.path.startswith(PROTOCOL_PREFIXES) and request.blueprint != "console":
        return exc
    detail = None
    if exc.code == 400 and exc.description == "csrf":
        detail = "The form was stale or came from another site. Reload the page and try again."
    return render_error(exc.code or 500, detail)


def init_app(app: Flask) -> None:
    @app.errorhandler(500)
    def _server_error(_exc):
        db.session.rollback()
        if request.path.startswith(PROTOCOL_PREFIXES) and request.blueprint != "console":
            return {"errors": [{"code": "UNKNOWN", "message": "internal error"}]}, 500
        return render_error(500)
