"""The console's route table: each page or form action names the action and resource kind it
needs, beside its rule. One check runs before every view; the authorization test reads PAGES."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from flask import Blueprint, abort, redirect, request, url_for

from app.access import SITE, OrgResource, RegistryResource, authorize
from app.access.policy import ORG_READ
from app.console import csrf

bp = Blueprint("console", __name__)
# Every form of the console carries the session's CSRF token; checked before any view runs.
bp.before_request(csrf.protect)

# Resource kinds: "public" (anyone, no check), "site" (the caller's own account or the site),
# "org" (the <org> in the URL), "registry" (the <org>/<registry> in the URL).
KINDS = ("public", "site", "org", "registry")


@dataclass(frozen=True)
class Page:
    methods: tuple[str, ...]
    rule: str
    endpoint: str
    action: str | None  # None with kind "public"
    kind: str


PAGES: list[Page] = []


def resource_for(kind: str, kwargs: dict):
    if kind == "org":
        return OrgResource(kwargs["org"])
    if kind == "registry":
        return RegistryResource(kwargs["org"], kwargs["registry"])
    return SITE


def check(action: str | None, kind: str, kwargs: dict) -> None:
    """Allow, or answer as the API does: sign in first, 404 to outsiders, 403 to members."""
    from app.console.session import current_principal

    if kind == "public":
        return
    principal = current_principal()
    target = resource_for(kind, kwargs)
    if authorize(principal, action, target):
        return
    if not principal.authenticated:
        raise SignInRequired()
    if isinstance(target, RegistryResource):
        # Whoever cannot even read a registry learns nothing of it.
        if not authorize(principal, "pull", target):
            abort(404)
    elif isinstance(target, OrgResource) and not authorize(principal, ORG_READ, target):
        abort(404)
    abort(403)


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
    return response


class SignInRequired(Exception):
    pass


@bp.errorhandler(SignInRequired)
def _sign_in_first(_exc):
    target = request.full_path if request.method == "GET" else None
    return redirect(url_for("console.sign_in", next=target.rstrip("?") if target else None))


def page(rule: str, action: str | None, kind: str, methods: tuple[str, ...] = ("GET",)) -> Callable:
    assert kind in KINDS and (action is None) == (kind == "public")

    def decorate(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def view(**kwargs):
            check(action, kind, kwargs)
            return fn(**kwargs)

        PAGES.append(Page(methods, rule, fn.__name__, action, kind))
        bp.add_url_rule(rule, endpoint=fn.__name__, view_func=view, methods=list(methods))
        return view

    return decorate
