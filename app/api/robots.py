"""/api/v1 robots, their tokens, CI trust policies and the workload identity exchange."""

from __future__ import annotations

from datetime import timedelta

from flask import current_app, jsonify, request

from app.access import ORG_ADMIN, access_tokens, oidc, tenancy, workload
from app.api.framework import ApiError, field_of, json_body, route
from app.api.shapes import TOKEN_BODY, created, new_token, policy_json, robot_json
from app.models import AccessToken, db
from app.models.base import utcnow
from app.web import read_json_body

# A trust-policy exchange hands out a token for one CI job, not for a day.
OIDC_TOKEN_TTL = timedelta(minutes=15)


@route("GET", "/orgs/<org>/robots", ORG_ADMIN, "org")
def list_robots(org: str):
    """The organisation's robot accounts."""
    return jsonify({"robots": [robot_json(r) for r in tenancy.robots(org)]})


@route(
    "POST",
    "/orgs/<org>/robots",
    ORG_ADMIN,
    "org",
    {"name": ("string", True), "description": ("string", False)},
)
def create_robot(org: str):
    """Create a robot account named `<org>+<name>`."""
    data = json_body()
    robot = tenancy.create_robot(
        org, field_of(data, "name", str, required=True), field_of(data, "description", str)
    )
    return created(robot_json(robot))


@route("DELETE", "/orgs/<org>/robots/<name>", ORG_ADMIN, "org")
def delete_robot(org: str, name: str):
    """Delete a robot: its tokens, grants and trust policies stop working at once."""
    tenancy.delete_robot(org, name)
    return "", 204


@route("GET", "/orgs/<org>/robots/<name>/tokens", ORG_ADMIN, "org")
def list_robot_tokens(org: str, name: str):
    """A robot's tokens."""
    robot = tenancy.find_robot(org, name)
    return jsonify({"tokens": [access_tokens.describe(t) for t in access_tokens.of_user(robot)]})


@route("POST", "/orgs/<org>/robots/<name>/tokens", ORG_ADMIN, "org", TOKEN_BODY)
def create_robot_token(org: str, name: str):
    """Create a token for a robot; shown once."""
    data = json_body()
    for path in field_of(data, "registries", list) or []:
        if not str(path).startswith(f"{org}/"):
            raise ApiError(400, "INVALID", "a robot's token is limited to its own registries")
    return new_token(tenancy.find_robot(org, name), data)


@route("DELETE", "/orgs/<org>/robots/<name>/tokens/<int:token_id>", ORG_ADMIN, "org")
def revoke_robot_token(org: str, name: str, token_id: int):
    """Revoke a robot's token."""
    robot = tenancy.find_robot(org, name)
    row = db.session.get(AccessToken, token_id)
    if row is None or row.user_id != robot.id or row.revoked_at is not None:
        raise ApiError(404, "NOT_FOUND", f"token {token_id} not found")
    access_tokens.revoke(row)
    return "", 204


# ---- trust policies -------------------------------------------------------------------------


@route("GET", "/orgs/<org>/trust-policies", ORG_ADMIN, "org")
def list_trust_policies(org: str):
    """OIDC trust policies that let CI jobs act as robots."""
    return jsonify({"trust_policies": [policy_json(p) for p in tenancy.trust_policies(org)]})


@route(
    "POST",
    "/orgs/<org>/trust-policies",
    ORG_ADMIN,
    "org",
    {
        "name": ("string", True),
        "robot": ("string", True),
        "issuer": ("string", True),
        "audience": ("string", True),
        "claims": ("object", True),
    },
)
def create_trust_policy(org: str):
    """Trust ID tokens of an issuer, for one audience and matching claims, as a robot."""
    data = json_body()
    robot = field_of(data, "robot", str, required=True)
    # Accept the robot's short name or its full `<org>+<name>`.
    robot = robot.removeprefix(f"{org}+")
    policy = tenancy.add_trust_policy(
        org,
        robot,
        field_of(data, "name", str, required=True),
        field_of(data, "issuer", str, required=True),
        field_of(data, "audience", str, required=True),
        field_of(data, "claims", dict, required=True),
    )
    return created(policy_json(policy))


@route("DELETE", "/orgs/<org>/trust-policies/<int:policy_id>", ORG_ADMIN, "org")
def delete_trust_policy(org: str, policy_id: int):
    """Delete a trust policy."""
    tenancy.delete_trust_policy(org, policy_id)
    return "", 204


# ---- workload identity exchange -------------------------------------------------------------


@route(
    "POST",
    "/oidc/token",
    None,
    "public",
    {"robot": ("string", True), "id_token": ("string", True)},
)
def oidc_exchange():
    """Exchange a CI job's OIDC ID token for a short-lived token of a robot."""
    data = read_json_body() if request.is_json else request.form.to_dict()
    if not isinstance(data, dict):
        raise ApiError(400, "INVALID", "send robot and id_token as JSON or a form")
    robot_name = field_of(data, "robot", str, required=True)
    id_token = field_of(data, "id_token", str, required=True)
    robot = tenancy.find_user(robot_name)
    refused = ApiError(401, "UNAUTHORIZED", "the ID token is not accepted for this robot")
    if robot is None or not robot.is_robot:
        raise refused
    try:
        policy, claims = oidc.verify(robot, id_token)
    except oidc.OIDCError as exc:
        # The detail goes to the log only: told to an anonymous caller, it would say which
        # addresses and ports behind us answer.
        current_app.logger.warning("OIDC exchange for %s refused: %s", robot_name, exc)
        raise refused from None
    row, secret = access_tokens.create(
        robot,
        f"oidc:{policy.name}",
        expires_at=utcnow() + OIDC_TOKEN_TTL,
        workload_identity=workload.identity(claims),
    )
    return jsonify(
        {
            "username": robot.username,
            "token": secret,
            "expires_in": int(OIDC_TOKEN_TTL.total_seconds()),
            "subject": claims.get("sub"),
        }
    )
