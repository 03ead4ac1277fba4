"""The JSON shapes and small helpers the management routes share."""

from __future__ import annotations

from datetime import timedelta

from flask import jsonify

from app.access import access_tokens
from app.access.policy import find_registry
from app.api.framework import ApiError, field_of
from app.auth.credentials import current_caller
from app.models import Invitation, Organisation, Registry, TrustPolicy, User, db
from app.models.base import utcnow


def me() -> User:
    user = db.session.get(User, current_caller().principal.user_id)
    if user is None:
        raise ApiError(401, "UNAUTHORIZED", "authentication required")
    return user


def iso(value) -> str | None:
    return value.isoformat() + "Z" if value else None


def org_json(org: Organisation, role: str | None = None) -> dict:
    out = {"name": org.name, "created_at": iso(org.created_at)}
    if role:
        out["role"] = role
    return out


def registry_json(org: str, reg: Registry) -> dict:
    return {"organisation": org, "name": reg.name, "public": reg.public}


def invitation_json(inv: Invitation) -> dict:
    org = db.session.get(Organisation, inv.organisation_id)
    expired = inv.state == "pending" and inv.expires_at <= utcnow()
    return {
        "id": inv.id,
        "organisation": org.name,
        "invitee": inv.invitee,
        "role": inv.role,
        "state": "expired" if expired else inv.state,
        "created_at": iso(inv.created_at),
        "expires_at": iso(inv.expires_at),
    }


def robot_json(robot: User) -> dict:
    return {"name": robot.username, "description": robot.description or ""}


def policy_json(policy: TrustPolicy) -> dict:
    robot = db.session.get(User, policy.robot_id)
    return {
        "id": policy.id,
        "name": policy.name,
        "robot": robot.username,
        "issuer": policy.issuer,
        "audience": policy.audience,
        "claims": policy.claims,
    }


def created(body: dict):
    resp = jsonify(body)
    resp.status_code = 201
    return resp


def new_token(user: User, data: dict):
    days = field_of(data, "expires_in_days", int)
    if days is not None and not 1 <= days <= 3650:
        raise ApiError(400, "INVALID", "expires_in_days must be between 1 and 3650")
    row, secret = access_tokens.create(
        user,
        field_of(data, "name", str, required=True),
        scope=field_of(data, "scope", str, "read-write"),
        registries=field_of(data, "registries", list),
        expires_at=utcnow() + timedelta(days=days) if days else None,
    )
    return created({**access_tokens.describe(row), "token": secret})


TOKEN_BODY = {
    "name": ("string", True),
    "scope": ("string", False),
    "registries": ("array", False),
    "expires_in_days": ("integer", False),
}


def registry_row(org: str, registry: str) -> Registry:
    reg = find_registry(org, registry)
    if reg is None:
        raise ApiError(404, "NOT_FOUND", f"registry {org}/{registry} not found")
    return reg
