"""Turn a request's Authorization header into a principal, and protect routes with it."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

import jwt
from flask import current_app, g, request
from sqlalchemy import select

from app.access import Principal, access_tokens, oidc, throttle
from app.access.policy import ANONYMOUS, principal_for
from app.models import User, db
from app.ops.metrics import LOGIN_FAILURES
from app.registry.errors import RegistryError


@dataclass(frozen=True)
class Caller:
    principal: Principal
    # The token's access claim as {(type, name): actions}; None when no token bounds the caller.
    access: dict[tuple[str, str], frozenset[str]] | None


def basic_credentials() -> tuple[str, str] | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        username, sep, password = base64.b64decode(value.strip()).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise unauthorized("malformed Basic credentials") from None
    if not sep:
        raise unauthorized("malformed Basic credentials")
    return username, password


# The username twine and PyPI use with API tokens; any token's own owner name works too.
TOKEN_USERNAME = "__token__"


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
            oidc.verify(robot, password)
        except oidc.OIDCError as exc:
            current_app.logger.info("OIDC login for %s refused: %s", robot.username, exc)
            return None
        return principal_for(robot)
    key = _VERIFIED.key(username, password)
    hit = _VERIFIED.get(key)
    if hit is not None:
        user = db.session.get(User, hit[0])
        # The stored hash is part of the entry: a changed password invalidates it at once.
        if user is not None and user.username == username and user.password_hash == hit[1]:
            return principal_for(user)
    user = current_app.extensions["cargohold.identity"].authenticate(username, password)
    if user is None:
        return None
    _VERIFIED.put(key, (user.id, user.password_hash))
    return principal_for(user)


class _VerifiedPasswords:
    """Passwords verified in the last minute, by keyed hash. pip, uv and twine send Basic
    credentials with every request; without this each one costs a full argon2 verification
    (tens of milliseconds of CPU and 64 MiB of memory), capping a private index at a few pages
    per second. An entry is only trusted while the user's stored hash is the one it was verified
    against, so a password change takes effect at once."""

    TTL = 60.0
    SIZE = 1024

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[float, tuple[int, str | None]]] = OrderedDict()

    @staticmethod
    def key(username: str, password: str) -> str:
        secret = current_app.config["SECRET_KEY"].encode()
        return hmac.new(secret, f"{username}\0{password}".encode(), hashlib.sha256).hexdigest()

    def get(self, key: str) -> tuple[int, str | None] | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0] < time.monotonic():
                self._entries.pop(key, None)
                return None
            return entry[1]

    def put(self, key: str, value: tuple[int, str | None]) -> None:
        with self._lock:
            self._entries[key] = (time.monotonic() + self.TTL, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.SIZE:
                self._entries.popitem(last=False)


_VERIFIED = _VerifiedPasswords()


def _robot(username: str) -> User | None:
    if "+" not in username:
        return None
    user = db.session.execute(select(User).where(User.username == username)).scalar_one_or_none()
    return user if user is not None and user.is_robot else None


def login(username: str, password: str) -> Principal:
    """Check credentials, with failed attempts throttled per account and per address."""
    address = request.remote_addr
    wait = throttle.retry_after(username, address)
    if wait is not None:
        LOGIN_FAILURES.labels("throttled").inc()
        raise RegistryError(
            "TOOMANYREQUESTS",
            "too many failed logins; try again later",
            headers={"Retry-After": str(wait)},
        )
    principal = _authenticate(username, password)
    if principal is None:
        throttle.failed(username, address)
        LOGIN_FAILURES.labels("invalid").inc()
        raise unauthorized("invalid username or password")
    throttle.succeeded(username)
    return principal


def challenge(scope: str | None = None, error: str | None = None) -> str:
    settings = current_app.extensions["cargohold.settings"]
    base = settings.public_url or request.host_url.rstrip("/")
    parts = [f'realm="{base}/auth/token"', f'service="{settings.service}"']
    if scope:
        parts.append(f'scope="{scope}"')
    if error:
        parts.append(f'error="{error}"')
    return "Bearer " + ",".join(parts)


def unauthorized(detail: str | None = None, scope: str | None = None, error: str | None = None):
    return RegistryError(
        "UNAUTHORIZED", detail, headers={"WWW-Authenticate": challenge(scope, error)}
    )


def current_caller() -> Caller:
    """Authenticate once per request; bad credentials are an error, none are anonymous."""
    if "caller" in g:
        return g.caller
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        issuer = current_app.extensions["cargohold.tokens"]
        try:
            principal, claims = issuer.verify(value.strip(), "access")
        except jwt.InvalidTokenError as exc:
            raise unauthorized(f"invalid token: {exc}", error="invalid_token") from None
        access: dict[tuple[str, str], frozenset[str]] = {}
        for entry in claims.get("access") or []:
            key = (entry.get("type", ""), entry.get("name", ""))
            access[key] = access.get(key, frozenset()) | frozenset(entry.get("actions") or [])
        caller = Caller(principal, access)
    elif (creds := basic_credentials()) is not None:
        caller = Caller(login(*creds), None)
    else:
        caller = Caller(ANONYMOUS, None)
    g.caller = caller
    return caller
