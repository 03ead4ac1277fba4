"""The console's one error mapper, and friendly HTML error pages (for browsers lost outside the
protocols too). Pages say what happened and where to go next; they never echo internals.

Core errors, the gate's refusals included, become what a person in a browser expects:
Unauthenticated -> the sign-in page (coming back here after); NotFound -> the 404 page; Denied
-> the 403 page, or the 404 page where the caller may not even read the registry (whoever cannot
read it learns nothing of it); a form action's own refusal (Invalid, Conflict, a member who is
not there) -> back to the form's page with the message; TooManyRequests and Unavailable -> a
page with Retry-After.
"""

from __future__ import annotations

from flask import Flask, redirect, render_template, request, url_for
from werkzeug.exceptions import HTTPException

from app.console.blueprint import bp, form_page
from app.console.templating import notice
from app.errors import CoreError, Denied, TooManyRequests, Unauthenticated, Unavailable
from app.gate import permits
from app.models import db

TITLES = {
    400: "That request could not be handled",
    403: "You may not do that",
    404: "Nothing here",
    405: "Not possible here",
    409: "That request could not be handled",
    413: "That request is too large",
    429: "Too many attempts",
    500: "Something went wrong",
    503: "Temporarily unavailable",
}
# Statuses whose core message is shown: it tells the person what to change or when to retry.
EXPLAINED = (400, 409, 413, 429)
# Paths answered in a protocol's own error format, never with an HTML page.
PROTOCOL_PREFIXES = ("/v2", "/api/", "/auth/")


def render_error(status: int, detail: str | None = None, headers: dict | None = None):
    title = TITLES.get(status, "Something went wrong")
    page = render_template("console/error.html", status=status, title=title, detail=detail)
    return page, status, headers or {}


def sign_in_first():
    """To the sign-in page, which brings the person back to this page afterwards: a path of this
    site only (never "//elsewhere"), and only for a page, not a form's action."""
    target = request.full_path.rstrip("?") if request.method == "GET" else None
    if target and (target.startswith("//") or "\\" in target):
        target = None
    return redirect(url_for("console.sign_in", next=target))


def _hides_registry() -> bool:
    args = request.view_args or {}
    if "org" not in args or "registry" not in args:
        return False
    return not permits("pull", "registry", org=args["org"], registry=args["registry"])


@bp.errorhandler(CoreError)
def _core_error(exc: CoreError):
    headers = {k: v for k, v in exc.headers.items() if v and k != "WWW-Authenticate"}
    if isinstance(exc, Unauthenticated):
        return sign_in_first()
    if isinstance(exc, TooManyRequests | Unavailable):
        headers.setdefault("Retry-After", "5")
        return render_error(exc.status, exc.message if exc.status in EXPLAINED else None, headers)
    back = form_page()
    if back is not None:
        notice(_sentence(exc.message), "error")
        return redirect(back)
    if isinstance(exc, Denied) and _hides_registry():
        return render_error(404)
    return render_error(exc.status, exc.message if exc.status in EXPLAINED else None, headers)


def _sentence(message: str) -> str:
    text = message.strip().strip("'\"")
    return (text[:1].upper() + text[1:]).rstrip(".") + "." if text else "That did not work."


@bp.app_errorhandler(HTTPException)
def http_error(exc: HTTPException):
    """Every HTTP error outside a blueprint's own handlers (the app factory sends here the URLs
    no route matches outside /api/v1): a page, or the exception's own answer on protocol paths."""
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
