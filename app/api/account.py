"""/api/v1 for the signed-in account: profile, password, personal tokens, invitations."""

from __future__ import annotations

from flask import jsonify

from app.access import ACCOUNT_MANAGE, ACCOUNT_READ, SITE_ADMIN, access_tokens, accounts, tenancy
from app.api.framework import ApiError, field_of, json_body, route
from app.api.shapes import TOKEN_BODY, invitation_json, me, new_token, org_json
from app.auth.credentials import keep_failure_count
from app.models import AccessToken, Membership, Organisation, db


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
    try:
        accounts.change_password(
            me(),
            field_of(data, "current_password", str, required=True),
            field_of(data, "new_password", str, required=True),
        )
    except accounts.WrongPassword:
        keep_failure_count()  # counted by change_password; the refusal rolls the request back
        raise
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
