"""The console's blueprint: its routes declare their requirement at the project's gate
(`@requires(action, kind)` under each route), and its caller is the person its cookie session
names (`app.console.session`). Every form carries the session's CSRF token, checked before any
view runs; every answer carries headers that keep script out and frames away."""

from __future__ import annotations

import functools
from collections.abc import Callable

from flask import Blueprint, current_app, g, request, url_for

from app.access import hosted_ui
from app.console import csrf

bp = Blueprint("console", __name__)
bp.before_request(csrf.protect)

# Defence in depth beside autoescaping: no inline script runs, nothing frames the console.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' https: data:; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@bp.after_request
def _security_headers(response):
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    ui = hosted_ui.configured()
    if ui is not None:
        # Signing out of a session begun there redirects the sign-out form to the hosted UI's
        # logout endpoint, and browsers hold form redirects to `form-action` too.
        policy = response.headers["Content-Security-Policy"]
        response.headers["Content-Security-Policy"] = policy.replace(
            "form-action 'self'", f"form-action 'self' {ui.domain}"
        )
    return response


def form_of(page: str) -> Callable:
    """Name the page a form action belongs to; put it under `@requires`. Once the gate has let
    the action through, a core error from its work (a bad name, the last admin, a member who is
    not there) goes back to that page as a notice instead of an error page (app/console/errors)."""

    def decorate(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def view(**kwargs):
            g.console_form = page
            return fn(**kwargs)

        return view

    return decorate


def form_page() -> str | None:
    """Where the running form action sends its caller back, with the URL's own arguments."""
    page = g.get("console_form")
    if page is None:
        return None
    rule = next(current_app.url_map.iter_rules(page))
    args = {k: v for k, v in (request.view_args or {}).items() if k in rule.arguments}
    return url_for(page, **args)
