"""Turn a request's Authorization header into a principal, and protect routes with it."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

import jwt
from flask import current_app, g, request

from app.access import Principal
from app.access.policy import ANONYMOUS
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


def login(username: str, password: str) -> Principal:
    user = current_app.extensions["cargohold.identity"].authenticate(username, password)
    if user is None:
        raise unauthorized("invalid username or password")
    return Principal("user", user.id, user.username)


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
