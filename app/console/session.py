"""Console sign-in sessions: a signed cookie holding the user id, the credential it was opened
with, and when it was last used. HttpOnly, SameSite=Lax, Secure whenever the request is https.

A session ends when it has been idle too long, or when the user's credentials changed since it
began: the password hash it saw (and the credential epoch, where the user model has one) are
kept in it and compared on every request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

from flask import Flask, current_app, g, request, session
from flask.sessions import SecureCookieSessionInterface

from app.access import Principal
from app.access.policy import ANONYMOUS, principal_for
from app.models import User, db

COOKIE = "cargohold_session"


class ConsoleSessionInterface(SecureCookieSessionInterface):
    def get_cookie_secure(self, app: Flask) -> bool:
        settings = app.extensions["cargohold.settings"]
        return request.is_secure or settings.public_url.startswith("https://")


def init_app(app: Flask) -> None:
    app.session_interface = ConsoleSessionInterface()
    app.config.update(
        SESSION_COOKIE_NAME=COOKIE,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
    )


def _fingerprint(user: User) -> str:
    """Changes whenever the password does, without putting the hash in the cookie."""
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, (user.password_hash or "").encode(), hashlib.sha256).hexdigest()[:24]


def _epoch(user: User) -> int:
    # A per-user counter that every credential change bumps, where the model provides one.
    return int(getattr(user, "credential_epoch", 0) or 0)


def _idle_limit() -> int:
    return current_app.extensions["cargohold.settings"].console_idle_timeout


def begin(user: User) -> None:
    """Start a fresh session for a user (a new CSRF token too: no fixation across sign-in)."""
    session.clear()
    session["uid"] = user.id
    session["pw"] = _fingerprint(user)
    session["ep"] = _epoch(user)
    session["seen"] = int(time.time())
    session["csrf"] = secrets.token_urlsafe(32)
    g.pop("console_user", None)


def end() -> None:
    session.clear()
    g.pop("console_user", None)


def current_user() -> User | None:
    if "console_user" in g:
        return g.console_user
    user = None
    uid = session.get("uid")
    if uid is not None:
        now = int(time.time())
        candidate = db.session.get(User, uid)
        fresh = now - int(session.get("seen", 0)) <= _idle_limit()
        if (
            candidate is not None
            and not candidate.is_robot
            and fresh
            and hmac.compare_digest(str(session.get("pw", "")), _fingerprint(candidate))
            and session.get("ep") == _epoch(candidate)
        ):
            user = candidate
            # Rewrite the cookie now and then, not on every page.
            if now - int(session.get("seen", 0)) >= min(60, _idle_limit() // 4):
                session["seen"] = now
        else:
            session.clear()
    g.console_user = user
    return user


def current_principal() -> Principal:
    user = current_user()
    return principal_for(user) if user is not None else ANONYMOUS


def refresh_credentials(user: User) -> None:
    """After the user changed their own password: this session continues, all others end."""
    session["pw"] = _fingerprint(user)
    session["ep"] = _epoch(user)
