"""Console sign-in sessions: a signed cookie holding the user id, the account's credential epoch
when it was opened, and when it was last used. HttpOnly, SameSite=Lax, Secure whenever the
request is https.

A session ends when it has been idle too long, or when the account's credentials changed since
it began: every password change or reset moves the credential epoch on
(`app.access.accounts.epoch_of`), as it ends the registry and refresh tokens minted from the old
password. The session is the console's caller at the gate (`init_app` declares it).
"""

from __future__ import annotations

import secrets
import time

from flask import Flask, Request, current_app, g, request, session
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface

from app.access import Principal, accounts
from app.access.policy import ANONYMOUS, principal_for
from app.auth.credentials import session_caller
from app.models import User, db

COOKIE = "cargohold_session"


class ConsoleSessionInterface(SecureCookieSessionInterface):
    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if "HTTP_COOKIE" not in request.environ and app.secret_key:
            # Registry clients send no cookies: an empty session needs no signing serializer,
            # which costs more to build than everything else Flask does for the session.
            return self.session_class()
        return super().open_session(app, request)

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
    session_caller("console", current_principal)


def _idle_limit() -> int:
    return current_app.extensions["cargohold.settings"].console_idle_timeout


def begin(user: User) -> None:
    """Start a fresh session for a user (a new CSRF token too: no fixation across sign-in)."""
    session.clear()
    session["uid"] = user.id
    session["ep"] = accounts.epoch_of(user)
    session["seen"] = int(time.time())
    session["csrf"] = secrets.token_urlsafe(32)
    _forget()


def end() -> None:
    session.clear()
    _forget()


def _forget() -> None:
    """The request's caller changed: read it again from the session."""
    g.pop("console_user", None)
    g.pop("caller", None)


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
            and session.get("ep") == accounts.epoch_of(candidate)
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
    session["ep"] = accounts.epoch_of(user)
