"""/api/v1: organisations, registries, members, invitations, tokens, robots, trust policies."""

from __future__ import annotations

from datetime import timedelta

from flask import current_app, jsonify, request
from sqlalchemy import select

from app.access import (
    ACCOUNT_MANAGE,
    ACCOUNT_READ,
    ORG_ADMIN,
    ORG_CREATE,
    ORG_READ,
    SITE_ADMIN,
    access_tokens,
    accounts,
    oidc,
    tenancy,
    workload,
)
from app.access.policy import find_registry
from app.api.framework import ApiError, field_of, json_body, route
from app.auth.credentials import current_caller
from app.models import (
    AccessToken,
    Invitation,
    Membership,
    Organisation,
    Registry,
    TagRule,
    TrustPolicy,
    User,
    db,
)
from app.models.base import utcnow
from app.registry import deletion, gc, immutability, repositories
from app.registry.names import is_reserved_path, parse_repository
from app.web import read_json_body

# A trust-policy exchange hands out a token for one CI job, not for a day.
OIDC_TOKEN_TTL = timedelta(minutes=15)


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


# ---- account --------------------------------------------------------------------------------


@route("GET", "/user", ACCOUNT_READ, "site")
def get_user():
    """The authenticated user and the organisations they belong to."""
    user = me()
    orgs = [
        org_json(org, role)
        for org, role in db.session.execute(
            db.select(Organisation, Membership.role)
            .join(Membership, Membership.organisation_id == Organisation.id)
            .where(Membership.user_id == user.id)
            .order_by(Organisation.name)
        )
    ]
    return jsonify({"username": user.username, "email": user.email, "organisations": orgs})


@route(
    "POST",
    "/user/password",
    ACCOUNT_MANAGE,
    "site",
    {"current_password": ("string", True), "new_password": ("string", True)},
)
def change_password():
    """Change your password: registry and refresh tokens minted from the old one stop working."""
    data = json_body()
    accounts.change_password(
        me(),
        field_of(data, "current_password", str, required=True),
        field_of(data, "new_password", str, required=True),
    )
    return "", 204


@route("PUT", "/users/<username>/password", SITE_ADMIN, "site", {"new_password": ("string", True)})
def reset_password(username: str):
    """Set another user's password (site admins): tokens minted from the old one stop working."""
    new_password = field_of(json_body(), "new_password", str, required=True)
    user = tenancy.find_user(username)
    if user is None:
        raise ApiError(404, "NOT_FOUND", f"user {username!r} not found")
    accounts.reset_password(user, new_password, by=me())
    return "", 204


@route("GET", "/tokens", ACCOUNT_READ, "site")
def list_tokens():
    """Your personal access tokens (never their secrets)."""
    return jsonify({"tokens": [access_tokens.describe(t) for t in access_tokens.of_user(me())]})


@route("POST", "/tokens", ACCOUNT_MANAGE, "site", TOKEN_BODY)
def create_token():
    """Create a personal access token; the response is the only time its secret is shown."""
    return new_token(me(), json_body())


@route("DELETE", "/tokens/<int:token_id>", ACCOUNT_MANAGE, "site")
def revoke_token(token_id: int):
    """Revoke one of your tokens."""
    row = db.session.get(AccessToken, token_id)
    if row is None or row.user_id != me().id or row.revoked_at is not None:
        raise ApiError(404, "NOT_FOUND", f"token {token_id} not found")
    access_tokens.revoke(row)
    return "", 204


@route("GET", "/invitations", ACCOUNT_READ, "site")
def my_invitations():
    """Pending invitations addressed to you."""
    return jsonify({"invitations": [invitation_json(i) for i in tenancy.invitations_for(me())]})


@route("POST", "/invitations/<int:invitation_id>/accept", ACCOUNT_MANAGE, "site")
def accept_invitation(invitation_id: int):
    """Accept an invitation: you become a member with its role."""
    return jsonify(invitation_json(tenancy.answer(invitation_id, me(), accept=True)))


@route("POST", "/invitations/<int:invitation_id>/decline", ACCOUNT_MANAGE, "site")
def decline_invitation(invitation_id: int):
    """Decline an invitation."""
    return jsonify(invitation_json(tenancy.answer(invitation_id, me(), accept=False)))


# ---- organisations -------------------------------------------------------------------------


@route("POST", "/orgs", ORG_CREATE, "site", {"name": ("string", True)})
def create_org():
    """Create an organisation; its creator becomes its admin."""
    org = tenancy.create_org(field_of(json_body(), "name", str, required=True), me())
    return created(org_json(org, "admin"))


@route("GET", "/orgs/<org>", ORG_READ, "org")
def get_org(org: str):
    """An organisation and its registries."""
    return jsonify({**org_json(tenancy.find_org(org)), "registries": registries_json(org)})


@route("GET", "/orgs/<org>/registries", ORG_READ, "org")
def list_registries(org: str):
    """The organisation's registries."""
    return jsonify({"registries": registries_json(org)})


def registries_json(org: str) -> list[dict]:
    found = tenancy.find_org(org)
    return [registry_json(org, r) for r in sorted(found.registries, key=lambda r: r.name)]


@route(
    "POST",
    "/orgs/<org>/registries",
    ORG_ADMIN,
    "org",
    {"name": ("string", True), "public": ("boolean", False)},
)
def create_registry(org: str):
    """Create a registry (private unless public is true)."""
    data = json_body()
    reg = tenancy.create_registry(
        org,
        field_of(data, "name", str, required=True),
        public=field_of(data, "public", bool, False),
    )
    return created(registry_json(org, reg))


@route(
    "PATCH", "/orgs/<org>/registries/<registry>", ORG_ADMIN, "org", {"public": ("boolean", True)}
)
def update_registry(org: str, registry: str):
    """Make a registry public or private."""
    public = field_of(json_body(), "public", bool, required=True)
    return jsonify(registry_json(org, tenancy.set_registry_public(org, registry, public)))


@route("GET", "/orgs/<org>/registries/<registry>/grants", ORG_ADMIN, "org")
def list_grants(org: str, registry: str):
    """Roles granted on this registry alone."""
    grants = tenancy.registry_grants(org, registry)
    return jsonify({"grants": [{"name": u.username, "role": role} for u, role in grants]})


@route(
    "PUT",
    "/orgs/<org>/registries/<registry>/grants/<username>",
    ORG_ADMIN,
    "org",
    {"role": ("string", True)},
)
def put_grant(org: str, registry: str, username: str):
    """Grant a user or robot a role on this registry."""
    role = field_of(json_body(), "role", str, required=True)
    tenancy.grant_registry(org, registry, username, role)
    return jsonify({"name": username, "role": role})


@route("DELETE", "/orgs/<org>/registries/<registry>/grants/<username>", ORG_ADMIN, "org")
def delete_grant(org: str, registry: str, username: str):
    """Remove a registry grant."""
    tenancy.revoke_registry(org, registry, username)
    return "", 204


# ---- members and invitations ----------------------------------------------------------------


@route("GET", "/orgs/<org>/members", ORG_READ, "org")
def list_members(org: str):
    """Members and their roles."""
    return jsonify(
        {"members": [{"name": u.username, "role": role} for u, role in tenancy.members(org)]}
    )


@route("PUT", "/orgs/<org>/members/<username>", ORG_ADMIN, "org", {"role": ("string", True)})
def put_member(org: str, username: str):
    """Add a member or change a role (the last admin cannot be demoted)."""
    role = field_of(json_body(), "role", str, required=True)
    tenancy.change_member(org, username, role)
    return jsonify({"name": username, "role": role})


@route("DELETE", "/orgs/<org>/members/<username>", ORG_ADMIN, "org")
def delete_member(org: str, username: str):
    """Remove a member (never the last admin)."""
    tenancy.remove_member(org, username)
    return "", 204


@route("GET", "/orgs/<org>/invitations", ORG_ADMIN, "org")
def list_org_invitations(org: str):
    """Invitations sent by the organisation."""
    return jsonify({"invitations": [invitation_json(i) for i in tenancy.invitations_of(org)]})


@route(
    "POST",
    "/orgs/<org>/invitations",
    ORG_ADMIN,
    "org",
    {"invitee": ("string", True), "role": ("string", True), "expires_in_days": ("integer", False)},
)
def create_invitation(org: str):
    """Invite a user, by username or email, with a role."""
    data = json_body()
    inv = tenancy.invite(
        org,
        field_of(data, "invitee", str, required=True),
        field_of(data, "role", str, required=True),
        me(),
        days=field_of(data, "expires_in_days", int, tenancy.INVITATION_DAYS),
    )
    return created(invitation_json(inv))


@route("DELETE", "/orgs/<org>/invitations/<int:invitation_id>", ORG_ADMIN, "org")
def cancel_invitation(org: str, invitation_id: int):
    """Withdraw a pending invitation."""
    tenancy.cancel_invitation(org, invitation_id)
    return "", 204


# ---- robots ---------------------------------------------------------------------------------


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


# ---- garbage collection ----------------------------------------------------------------------


@route("GET", "/admin/gc", SITE_ADMIN, "site")
def gc_status():
    """Garbage collection: candidates pending, bytes reclaimed, the last run."""
    figures = gc.status()
    figures["last_run_at"] = iso(figures["last_run_at"])
    return jsonify(figures)


# ---- graph-aware manifest deletion -----------------------------------------------------------

TRUE_WORDS = ("1", "true", "yes")
FALSE_WORDS = ("", "0", "false", "no")


@route(
    "DELETE",
    "/orgs/<org>/registries/<registry>/repositories/<path:repository>/manifests/<digest>",
    "delete",
    "registry",
)
def delete_manifest(org, registry, repository, digest):
    """Delete a manifest with its referrers and unused index children (?dry_run=true lists
    what would go and changes nothing)."""
    flag = request.args.get("dry_run", "").lower()
    if flag not in TRUE_WORDS + FALSE_WORDS:
        raise ApiError(400, "INVALID", "dry_run must be true or false")
    name = parse_repository(f"{org}/{registry}/{repository}")
    if is_reserved_path(name.path):
        raise ApiError(403, "DENIED", f"{name.full} is managed by its package API")
    repo = repositories.require(name)
    if flag in TRUE_WORDS:
        removals = deletion.plan(repo, digest)
    else:
        removals = deletion.delete_manifest(repo, digest)
    return jsonify(
        {
            "repository": name.full,
            "dry_run": flag in TRUE_WORDS,
            "removed": [r.as_json() for r in removals],
        }
    )


# ---- tag immutability --------------------------------------------------------------------------


def _registry_row(org: str, registry: str) -> Registry:
    reg = find_registry(org, registry)
    if reg is None:
        raise ApiError(404, "NOT_FOUND", f"registry {org}/{registry} not found")
    return reg


def rule_json(rule: TagRule) -> dict:
    return {"id": rule.id, "pattern": rule.pattern, "created_at": iso(rule.created_at)}


@route("GET", "/orgs/<org>/registries/<registry>/immutable-tags", ORG_READ, "org")
def list_tag_rules(org: str, registry: str):
    """Tag immutability rules of a registry."""
    reg = _registry_row(org, registry)
    rules = db.session.execute(
        select(TagRule).where(TagRule.registry_id == reg.id).order_by(TagRule.id)
    ).scalars()
    return jsonify([rule_json(r) for r in rules])


@route(
    "POST",
    "/orgs/<org>/registries/<registry>/immutable-tags",
    ORG_ADMIN,
    "org",
    {"pattern": ("string", True)},
)
def create_tag_rule(org: str, registry: str):
    """Protect the registry's tags matching a pattern (`v*`, `release-*`, `*`)."""
    reg = _registry_row(org, registry)
    pattern = immutability.check_pattern(field_of(json_body(), "pattern", str, required=True))
    exists = db.session.execute(
        select(TagRule).where(TagRule.registry_id == reg.id, TagRule.pattern == pattern)
    ).scalar_one_or_none()
    if exists is not None:
        raise ApiError(409, "CONFLICT", f"rule {pattern!r} exists")
    rule = TagRule(registry_id=reg.id, pattern=pattern)
    db.session.add(rule)
    db.session.flush()
    return created(rule_json(rule))


@route("DELETE", "/orgs/<org>/registries/<registry>/immutable-tags/<int:rule_id>", ORG_ADMIN, "org")
def delete_tag_rule(org: str, registry: str, rule_id: int):
    """Remove a tag immutability rule."""
    reg = _registry_row(org, registry)
    rule = db.session.get(TagRule, rule_id)
    if rule is None or rule.registry_id != reg.id:
        raise ApiError(404, "NOT_FOUND", f"rule {rule_id} not found")
    db.session.delete(rule)
    db.session.flush()
    return "", 204
