"""`/auth/token`: the Docker token endpoint, GET (Basic) and the OAuth2 POST form."""

from __future__ import annotations

from datetime import UTC, datetime

import jwt
from flask import Blueprint, current_app, jsonify, request

from app.access import ACTIONS, Principal, accounts, audit, granted_actions
from app.access.policy import ANONYMOUS
from app.auth.credentials import basic_credentials, login
from app.errors import CoreError, Unauthenticated
from app.gate import requires
from app.registry.errors import RegistryError
from app.registry.names import parse_repository
from app.web import distribution_error

bp = Blueprint("auth", __name__)


@bp.errorhandler(CoreError)
def _error(exc: CoreError):
    # The Docker token specification answers in the distribution spec's error format.
    return distribution_error(exc)


def parse_scope(scope: str) -> tuple[str, str, list[str]]:
    """`type[(class)]:name:action,action` -> (type, name, actions)."""
    rtype, sep1, rest = scope.partition(":")
    name, sep2, actions = rest.rpartition(":")
    if not (sep1 and sep2 and rtype and name):
        raise RegistryError("UNSUPPORTED", f"malformed scope {scope!r}", status=400)
    rtype = rtype.split("(", 1)[0]
    return rtype, name, [a for a in actions.split(",") if a]


def grant(principal: Principal, scopes: list[str]) -> list[dict]:
    """Each requested scope, cut down to what the principal holds, as the token spec says."""
    merged: dict[tuple[str, str], set[str]] = {}
    for scope in scopes:
        rtype, name, wanted = parse_scope(scope)
        merged.setdefault((rtype, name), set()).update(wanted)
    access = []
    for (rtype, name), wanted in merged.items():
        if rtype == "registry" and name == "catalog":
            # Anyone may ask for the catalog; it lists only what the caller may pull.
            access.append({"type": rtype, "name": name, "actions": ["*"]})
            continue
        if rtype != "repository":
            continue
        try:
            repo = parse_repository(name)
        except RegistryError:
            continue
        held = granted_actions(principal, repo.org, repo.registry)
        actions = {a for a in wanted if a in held}
        if "*" in wanted:
            actions |= held
            if held >= set(ACTIONS):
                actions.add("*")
        if actions:
            access.append({"type": rtype, "name": name, "actions": sorted(actions)})
    return access


def _token_response(principal: Principal, scopes: list[str], offline: bool, oauth: bool):
    issuer = current_app.extensions["cargohold.tokens"]
    access = grant(principal, scopes)
    token = issuer.access_token(principal, access, audit.current_ci())
    body = {
        "access_token": token,
        "expires_in": issuer.ttl,
        "issued_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
    }
    if not oauth:
        body["token"] = token
    else:
        body["scope"] = " ".join(
            f"{a['type']}:{a['name']}:{','.join(a['actions'])}" for a in access
        )
    if offline and principal.authenticated:
        body["refresh_token"] = issuer.refresh_token(principal)
    resp = jsonify(body)
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.get("/auth/token")
@requires(None, "public")  # the credentials are what this endpoint checks
def token_get():
    creds = basic_credentials()
    principal = login(*creds) if creds else ANONYMOUS
    # Repeated scope parameters, or several in one separated by spaces: clients do both.
    scopes = [s for value in request.args.getlist("scope") for s in value.split(" ") if s]
    offline = request.args.get("offline_token", "").lower() == "true"
    return _token_response(principal, scopes, offline, oauth=False)


@bp.post("/auth/token")
@requires(None, "public")
def token_post():
    form = request.form
    grant_type = form.get("grant_type", "")
    scopes = [s for s in form.get("scope", "").split(" ") if s]
    if grant_type == "password":
        principal = login(form.get("username", ""), form.get("password", ""))
    elif grant_type == "refresh_token":
        issuer = current_app.extensions["cargohold.tokens"]
        try:
            principal, _ = issuer.verify(form.get("refresh_token", ""), "refresh")
        except jwt.InvalidTokenError as exc:
            raise Unauthenticated(f"invalid refresh token: {exc}") from None
        # A refresh token lives longer than the password or access token that proved it may.
        if not accounts.still_current(principal):
            raise Unauthenticated("the credential behind this refresh token was changed or revoked")
    else:
        raise RegistryError("UNSUPPORTED", f"unsupported grant_type {grant_type!r}", status=400)
    offline = form.get("access_type") == "offline" or grant_type == "refresh_token"
    return _token_response(principal, scopes, offline, oauth=True)
