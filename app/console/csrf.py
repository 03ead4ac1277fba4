"""CSRF protection for every console form: a per-session random token, sent back in a hidden
field and compared in constant time before any POST view runs. The OCI, PyPI upload and API
routes take no cookies, so they need (and get) none of this."""

from __future__ import annotations

import hmac
import secrets

from flask import abort, request, session

FIELD = "csrf_token"


def token() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def protect() -> None:
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    sent = request.form.get(FIELD, "")
    expected = session.get("csrf", "")
    if not sent or not expected or not hmac.compare_digest(sent, expected):
        abort(400, description="csrf")
