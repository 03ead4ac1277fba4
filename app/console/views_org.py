"""An organisation: its registries, members and roles, invitations, robots, trust policies
and registry grants. Admin-only parts are neither shown to others nor accepted from them."""

from __future__ import annotations

from datetime import timedelta

from flask import redirect, render_template, request, session, url_for
from sqlalchemy import func, select

from app.access import ORG_ADMIN, ORG_READ, access_tokens, tenancy
from app.console import session as console_session
from app.console.blueprint import bp, form_of
from app.console.templating import notice
from app.errors import Invalid, NotFound
from app.gate import permits, requires
from app.models import AccessToken, Registry, RegistryGrant, Repository, User, db
from app.models.base import utcnow
from app.models.tenancy import ROLES
from app.registry import quotas


def registry_rows(org_id: int) -> list[dict]:
    """Each registry with its repository count and stored bytes: two grouped queries."""
    regs = list(
        db.session.execute(
            select(Registry).where(Registry.organisation_id == org_id).order_by(Registry.name)
        ).scalars()
    )
    ids = [r.id for r in regs]
    counts = dict(
        db.session.execute(
            select(Repository.registry_id, func.count(Repository.id))
            .where(Repository.registry_id.in_(ids))
            .group_by(Repository.registry_id)
        ).all()
    )
    # Each blob counted once per registry, however many of its repositories link it: the
    # quota's usage, kept up to date as content comes and goes.
    return [
        {
            "registry": r,
            "repositories": counts.get(r.id, 0),
            "usage": quotas.usage(quotas.REGISTRY, r.id),
        }
        for r in regs
    ]


@bp.route("/orgs/<org>")
@requires(ORG_READ, "org")
def organisation(org: str):
    found = tenancy.find_org(org)
    is_admin = permits(ORG_ADMIN, "org", org=org)
    ctx: dict = {
        "org": found,
        "registries": registry_rows(found.id),
        "usage": quotas.usage(quotas.ORG, found.id),
        "members": tenancy.members(org),
        "is_admin": is_admin,
        "roles": ROLES,
    }
    if is_admin:
        robots = tenancy.robots(org)
        robot_ids = [r.id for r in robots]
        tokens: dict[int, list[AccessToken]] = {rid: [] for rid in robot_ids}
        for t in db.session.execute(
            select(AccessToken)
            .where(AccessToken.user_id.in_(robot_ids), AccessToken.revoked_at.is_(None))
            .order_by(AccessToken.id)
        ).scalars():
            tokens[t.user_id].append(t)
        grants = db.session.execute(
            select(Registry.name, User.username, RegistryGrant.role)
            .join(RegistryGrant, RegistryGrant.registry_id == Registry.id)
            .join(User, User.id == RegistryGrant.user_id)
            .where(Registry.organisation_id == found.id)
            .order_by(Registry.name, User.username)
        ).all()
        ctx.update(
            robots=robots,
            robot_tokens=tokens,
            policies=tenancy.trust_policies(org),
            robot_names={r.id: r.username for r in robots},
            invitations=[i for i in tenancy.invitations_of(org) if i.state == "pending"],
            grants=grants,
            fresh=session.pop("new_token", None),
        )
    return render_template("console/organisation.html", **ctx)


def _back(org: str):
    return redirect(url_for("console.organisation", org=org))


def _attempt(org: str, fn, done: str):
    """Do one change; a core error it raises goes back to the organisation page as a notice
    (`form_of`), after the request's unit of work has rolled the change back."""
    fn()
    notice(done)
    return _back(org)


@bp.route("/orgs/<org>/invitations", methods=["POST"])
@requires(ORG_ADMIN, "org")
@form_of("console.organisation")
def invite_member(org: str):
    invitee = request.form.get("invitee", "").strip()
    role = request.form.get("role", "viewer")
    me = console_session.current_user()
    return _attempt(
        org, lambda: tenancy.invite(org, invitee, role, me), f"Invited {invitee} as {role}."
    )


@bp.route("/orgs/<org>/invitations/<int:invitation_id>/cancel", methods=["POST"])
@requires(ORG_ADMIN, "org")
@form_of("console.organisation")
def cancel_invitation(org: str, invitation_id: int):
    return _attempt(
        org, lambda: tenancy.cancel_invitation(org, invitation_id), "Invitation cancelled."
    )


@bp.route("/orgs/<org>/members/<username>/role", methods=["POST"])
@requires(ORG_ADMIN, "org")
@form_of("console.organisation")
def change_role(org: str, username: str):
    role = request.form.get("role", "")
    return _attempt(
        org,
        lambda: tenancy.change_member(org, username, role),
        f"{username} is now {role}.",
    )


@bp.route("/orgs/<org>/members/<username>/remove", methods=["POST"])
@requires(ORG_ADMIN, "org")
@form_of("console.organisation")
def remove_member(org: str, username: str):
    return _attempt(org, lambda: tenancy.remove_member(org, username), f"{username} removed.")


@bp.route("/orgs/<org>/registries", methods=["POST"])
@requires(ORG_ADMIN, "org")
@form_of("console.organisation")
def create_registry(org: str):
    name = request.form.get("name", "").strip()
    public = request.form.get("public") == "on"
    return _attempt(
        org,
        lambda: tenancy.create_registry(org, name, public=public),
        f"Registry {name} created.",
    )


@bp.route("/orgs/<org>/<registry>/visibility", methods=["POST"])
@requires(ORG_ADMIN, "org")
@form_of("console.organisation")
def set_visibility(org: str, registry: str):
    choice = request.form.get("public", "")
    if choice not in ("true", "false"):
        raise Invalid("Choose public or private.")
    public = choice == "true"
    return _attempt(
        org,
        lambda: tenancy.set_registry_public(org, registry, public),
        f"{org}/{registry} is now {'public' if public else 'private'}.",
    )


@bp.route("/orgs/<org>/grants", methods=["POST"])
@requires(ORG_ADMIN, "org")
@form_of("console.organisation")
def grant_registry(org: str):
    registry = request.form.get("registry", "")
    username = request.form.get("username", "").strip()
    role = request.form.get("role", "")
    return _attempt(
        org,
        lambda: tenancy.grant_registry(org, registry, username, role),
        f"{username} is {role} on {org}/{registry}.",
    )


@bp.route("/orgs/<org>/<registry>/grants/<username>/revoke", methods=["POST"])
@requires(ORG_ADMIN, "org")
@form_of("console.organisation")
def revoke_grant(org: str, registry: str, username: str):
    return _attempt(
        org,
        lambda: tenancy.revoke_registry(org, registry, username),
        f"{username} no longer has a role on {org}/{registry}.",
    )


@bp.route("/orgs/<org>/robots", methods=["POST"])
@requires(ORG_ADMIN, "org")
@form_of("console.organisation")
def create_robot(org: str):
    name = request.form.get("name", "").strip()
    description = request.form.get("description", "").strip()
    return _attempt(
        org,
        lambda: tenancy.create_robot(org, name, description),
        f"Robot {tenancy.robot_name(org, name)} created. Grant it a role on a registry.",
    )


@bp.route("/orgs/<org>/robots/<name>/delete", methods=["POST"])
@requires(ORG_ADMIN, "org")
@form_of("console.organisation")
def delete_robot(org: str, name: str):
    return _attempt(
        org,
        lambda: tenancy.delete_robot(org, name),
        f"Robot {tenancy.robot_name(org, name)} deleted.",
    )


@bp.route("/orgs/<org>/robots/<name>/tokens", methods=["POST"])
@requires(ORG_ADMIN, "org")
@form_of("console.organisation")
def create_robot_token(org: str, name: str):
    days_raw = request.form.get("expires_in_days", "")
    days = int(days_raw) if days_raw.isdigit() and 0 < int(days_raw) <= 3650 else None
    registries = [r.strip() for r in request.form.get("registries", "").split(",") if r.strip()]
    robot = tenancy.find_robot(org, name)
    if any(not path.startswith(f"{org}/") for path in registries):
        raise Invalid("a robot's token is limited to its own organisation's registries")
    row, secret = access_tokens.create(
        robot,
        request.form.get("token_name", ""),
        scope=request.form.get("scope", "read-write"),
        registries=registries or None,
        expires_at=utcnow() + timedelta(days=days) if days else None,
    )
    session["new_token"] = {"name": f"{robot.username}: {row.name}", "secret": secret}
    return redirect(url_for("console.organisation", org=org) + "#new-token")


@bp.route("/orgs/<org>/robots/<name>/tokens/<int:token_id>/revoke", methods=["POST"])
@requires(ORG_ADMIN, "org")
@form_of("console.organisation")
def revoke_robot_token(org: str, name: str, token_id: int):
    def revoke():
        robot = tenancy.find_robot(org, name)
        row = db.session.get(AccessToken, token_id)
        if row is None or row.user_id != robot.id or row.revoked_at is not None:
            raise NotFound(f"token {token_id} does not exist")
        access_tokens.revoke(row)

    return _attempt(org, revoke, "Token revoked.")


MAX_CLAIMS = 20


def parse_claims(text: str) -> dict[str, str]:
    """The form's required claims: `name = glob`, one per line."""
    claims: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        name, sep, glob = line.partition("=")
        if not sep or not name.strip() or not glob.strip():
            raise Invalid("write each required claim as name = glob, one per line")
        claims[name.strip()] = glob.strip()
    if len(claims) > MAX_CLAIMS:
        raise Invalid(f"a trust policy takes at most {MAX_CLAIMS} required claims")
    return claims


@bp.route("/orgs/<org>/trust-policies", methods=["POST"])
@requires(ORG_ADMIN, "org")
@form_of("console.organisation")
def create_trust_policy(org: str):
    form = request.form
    name = form.get("name", "").strip()
    return _attempt(
        org,
        lambda: tenancy.add_trust_policy(
            org,
            form.get("robot", "").strip().removeprefix(f"{org}+"),
            name,
            form.get("issuer", "").strip(),
            form.get("audience", "").strip(),
            parse_claims(form.get("claims", "")),
        ),
        f"Trust policy {name} created.",
    )


@bp.route("/orgs/<org>/trust-policies/<int:policy_id>/delete", methods=["POST"])
@requires(ORG_ADMIN, "org")
@form_of("console.organisation")
def delete_trust_policy(org: str, policy_id: int):
    return _attempt(
        org, lambda: tenancy.delete_trust_policy(org, policy_id), "Trust policy deleted."
    )
