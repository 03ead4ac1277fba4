"""/api/v1 organisations, registries and their grants, members and invitations."""

from __future__ import annotations

from flask import jsonify

from app.access import ORG_ADMIN, ORG_CREATE, ORG_READ, tenancy
from app.api.framework import field_of, json_body, route
from app.api.shapes import created, invitation_json, me, org_json, registry_json


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
