"""Turn a request's credentials into its caller: the Authorization header everywhere, except on
the routes of a blueprint whose callers are people with a cookie session (the console), where
the session alone says who calls."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass

import jwt
from flask import Flask, current_app, g, request
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from app.access import Principal, access_tokens, accounts, audit, oidc, throttle, workload
from app.access.policy import ANONYMOUS, principal_for
from app.caching import BoundedCache
from app.errors import TooManyRequests, Unauthenticated
from app.models import User, db
from app.ops.metrics import LOGIN_FAILURES


@dataclass(frozen=True)
class Caller:
    principal: Principal
    # The token's access claim as {(type, name): actions}; None when no token bounds the caller.
    access: dict[tuple[str, str], frozenset[str]] | None
    # Whether the request carried an Authorization header at all.
    presented: bool = False


def basic_credentials() -> tuple[str, str] | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        username, sep, password = base64.b64decode(value.strip()).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthenticated("malformed Basic credentials") from None
    # No account is named with a control character, and a NUL would reach PostgreSQL (which
    # refuses it) through the lookup and the failed login's audit event.
    if not sep or any(ord(c) < 32 or c == "\x7f" for c in username):
        raise Unauthenticated("malformed Basic credentials")
    return username, password


TOKEN_USERNAME = access_tokens.TOKEN_USERNAME


def _authenticate(username: str, password: str) -> Principal | None:
    """Password, access token, or (for robots) an OIDC ID token from a trusted CI issuer."""
    if access_tokens.looks_like_token(password):
        row = access_tokens.verify(password)
        user = db.session.get(User, row.user_id) if row else None
        if user is None or username not in (user.username, TOKEN_USERNAME):
            return None
        return principal_for(user, row)
    robot = _robot(username)
    if robot is not None:
        if password.count(".") != 2:
            return None  # robots have no password
        try:
            _, claims = oidc.verify(robot, password)
        except oidc.OIDCError as exc:
            current_app.logger.warning("OIDC login for %s refused: %s", robot.username, exc)
            return None
        return principal_for(robot, workload=workload.identity(claims))
    key = _VERIFIED.key(username, password)
    hit = _VERIFIED.get(key)
    if hit is not None:
        user = db.session.get(User, hit[0])
        # The stored hash and the credential epoch are part of the entry: a changed password
        # invalidates it at once, even with an identity provider that keeps no hash here.
        if (
            user is not None
            and user.username == username
            and (user.password_hash, user.credential_epoch) == hit[1:]
        ):
            return principal_for(user)
    user = current_app.extensions["cargohold.identity"].authenticate(username, password)
    if user is None:
        return None
    _VERIFIED.put(key, (user.id, user.password_hash, user.credential_epoch))
    return principal_for(user)


# (user id, stored password hash, credential epoch) of a verified password.
_Entry = tuple[int, str | None, int]


class _VerifiedPasswords:
    """Passwords verified in the last minute, by keyed hash. pip, uv and twine send Basic
    credentials with every request; without this each one costs a full argon2 verification
    (tens of milliseconds of CPU and 64 MiB of memory), capping a private index at a few pages
    per second. An entry is only trusted while the user's stored hash is the one it was verified
    against, so a password change takes effect at once."""

    TTL = 60.0
    SIZE = 1024

    def __init__(self) -> None:
        self._entries: BoundedCache[str, _Entry] = BoundedCache(self.SIZE, ttl=self.TTL)

    @staticmethod
    def key(username: str, password: str) -> str:
        secret = current_app.config["SECRET_KEY"].encode()
        return hmac.new(secret, f"{username}\0{password}".encode(), hashlib.sha256).hexdigest()

    def get(self, key: str) -> _Entry | None:
        return self._entries.get(key)

    def put(self, key: str, value: _Entry) -> None:
        self._entries.put(key, value)


_VERIFIED = _VerifiedPasswords()


def _robot(username: str) -> User | None:
    if "+" not in username:
        return None
    user = db.session.execute(select(User).where(User.username == username)).scalar_one_or_none()
    return user if user is not None and user.is_robot else None


def record_failed_login(
    account: str | None, address: str | None, username: str | None = None, method: str = ""
) -> None:
    """Count a failed login and audit it, both kept at once (`keep_failure_count`)."""
    throttle.failed(account, address)
    audit.login_failed(username, method or login_method())
    keep_failure_count()


def keep_failure_count() -> None:
    """A commit point of its own for a failed login's count (`throttle.failed`): the count must
    outlive the request that refuses it, whether that request raises or answers a page."""
    LOGIN_FAILURES.labels("invalid").inc()
    try:
        db.session.commit()
    except SQLAlchemyError:
        # Two requests inserting the same key at once: one count is lost, nothing else.
        db.session.rollback()


# How the audit log names each blueprint's login.
_LOGIN_METHODS = {"auth": "token-service", "pypi": "pypi", "api": "api", "oci": "registry"}


def login_method() -> str:
    return _LOGIN_METHODS.get(request.blueprint or "", request.blueprint or "basic")


def login(username: str, password: str) -> Principal:
    """Check credentials, with failed attempts throttled per credential and per address."""
    address = request.remote_addr
    account = throttle.account(username, password)
    before = throttle.standing(account, address)
    if before.wait is not None:
        LOGIN_FAILURES.labels("throttled").inc()
        audit.login_throttled(username, login_method())
        raise TooManyRequests(
            "too many failed logins; try again later", headers={"Retry-After": str(before.wait)}
        )
    principal = _authenticate(username, password)
    if principal is None:
        record_failed_login(account, address, username)
        raise Unauthenticated("invalid username or password")
    throttle.succeeded(account, before)
    audit.login_succeeded(principal, login_method())
    return principal


def init_audit(app: Flask) -> None:
    """Every request starts its audit context from the client's address (ProxyFix has made it
    the client's); refusals it recorded are written once its own transaction has ended."""

    @app.before_request
    def _begin_audit() -> None:
        audit.begin(request.remote_addr)

    @app.teardown_request
    def _write_refusals(_exc) -> None:
        rows = audit.pending_refusals()
        audit.end()
        if not rows:
            return
        try:
            db.session.rollback()
            audit.write_many(rows)
            db.session.commit()
        except SQLAlchemyError:
            db.session.rollback()
            current_app.logger.warning("could not keep %d audit refusal(s)", len(rows))


# Blueprint name -> the principal its cookie session proves (anonymous without one).
_SESSIONS: dict[str, Callable[[], Principal]] = {}


def session_caller(blueprint: str, principal: Callable[[], Principal]) -> None:
    """Declare that callers of `blueprint`'s routes are whoever its cookie session names. Only
    those routes read the cookie: a browser sends it with every request to this host, cross-site
    ones included, so on /v2, /api/v1 or the Python index it would be ambient authority any page
    could borrow. Those routes keep their Authorization-header credentials, and the session's
    routes (CSRF-checked forms) ignore that header."""
    _SESSIONS[blueprint] = principal


def current_caller() -> Caller:
    """Authenticate once per request; bad credentials are an error, none are anonymous."""
    if "caller" in g:
        return g.caller
    source = _SESSIONS.get(request.blueprint or "")
    if source is not None:
        principal = source()
        g.caller = Caller(principal, None, presented=principal.authenticated)
        audit.identify(principal)
        return g.caller
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    identity = current_app.extensions["cargohold.identity"]
    if scheme.lower() == "bearer" and getattr(identity, "issued", lambda _t: False)(value.strip()):
        # An identity provider's own token (a Cognito ID or access token): like a password.
        try:
            user = identity.bearer_user(value.strip())
        except jwt.InvalidTokenError as exc:
            raise Unauthenticated(f"invalid token: {exc}", error="invalid_token") from None
        caller = Caller(principal_for(user), None)
    elif scheme.lower() == "bearer":
        issuer = current_app.extensions["cargohold.tokens"]
        try:
            principal, claims = issuer.verify(value.strip(), "access")
        except jwt.InvalidTokenError as exc:
            raise Unauthenticated(f"invalid token: {exc}", error="invalid_token") from None
        if not accounts.still_current(principal):
            raise Unauthenticated(
                "the credential behind this token was changed or revoked", error="invalid_token"
            )
        access: dict[tuple[str, str], frozenset[str]] = {}
        for entry in claims.get("access") or []:
            key = (entry.get("type", ""), entry.get("name", ""))
            access[key] = access.get(key, frozenset()) | frozenset(entry.get("actions") or [])
        caller = Caller(principal, access, presented=True)
        audit.note_ci(claims.get("ci"))
    elif (creds := basic_credentials()) is not None:
        caller = Caller(login(*creds), None, presented=True)
    else:
        caller = Caller(ANONYMOUS, None, presented=bool(header))
    audit.identify(caller.principal)
    g.caller = caller
    return caller
