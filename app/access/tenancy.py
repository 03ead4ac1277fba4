"""Creating tenants: users, organisations, registries, memberships. Core functions: they flush,
the caller's unit of work commits; refusals are core errors."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, func, select

from app.access import audit
from app.access.policy import find_org, find_registry
from app.access.slugs import check_slug
from app.errors import Invalid, NotFound
from app.identity import check_username, provider
from app.models import (
    AccessToken,
    Invitation,
    Membership,
    Organisation,
    Registry,
    RegistryGrant,
    TrustPolicy,
    User,
    db,
)
from app.models.base import utcnow
from app.models.tenancy import ROLES


def find_user(username: str) -> User | None:
    return db.session.execute(select(User).where(User.username == username)).scalar_one_or_none()


def create_user(username: str, password: str, site_admin: bool = False) -> User:
    check_username(username)
    if find_user(username):
        raise Invalid(f"user {username!r} already exists")
    user = User(username=username, is_site_admin=site_admin)
    provider().set_password(user, password)
    db.session.add(user)
    db.session.flush()
    audit.record("user.create", details={"user": username, "site_admin": site_admin})
    return user


def create_org(name: str, owner: User) -> Organisation:
    check_slug("organisation", name)
    if find_org(name):
        raise Invalid(f"organisation {name!r} already exists")
    org = Organisation(name=name)
    db.session.add(org)
    db.session.flush()
    db.session.add(Membership(organisation_id=org.id, user_id=owner.id, role="admin"))
    db.session.flush()
    audit.record("org.create", org=name, details={"admin": owner.username})
    return org


def create_registry(org_name: str, name: str, public: bool = False) -> Registry:
    check_slug("registry", name)
    org = find_org(org_name)
    if org is None:
        raise Invalid(f"organisation {org_name!r} does not exist")
    if find_registry(org_name, name):
        raise Invalid(f"registry {org_name}/{name} already exists")
    registry = Registry(organisation_id=org.id, name=name, public=public)
    db.session.add(registry)
    db.session.flush()
    audit.record("registry.create", org=org_name, registry=name, details={"public": public})
    return registry


def set_member(org_name: str, username: str, role: str) -> Membership:
    if role not in ROLES:
        raise Invalid(f"role must be one of {', '.join(ROLES)}")
    org, user = find_org(org_name), find_user(username)
    if org is None:
        raise Invalid(f"organisation {org_name!r} does not exist")
    if user is None:
        raise Invalid(f"user {username!r} does not exist")
    before = _membership(org, user)
    old = before.role if before is not None else None
    row = _set_role(Membership, role, organisation_id=org.id, user_id=user.id)
    if old != role:
        details = {"member": username, "role": role, "previous_role": old}
        audit.record("member.set", org=org_name, details=details)
    return row


def _set_role(model, role: str, **keys):
    """Create or update the role row (membership or registry grant) identified by `keys`."""
    row = db.session.execute(select(model).filter_by(**keys)).scalar_one_or_none()
    if row is None:
        row = model(**keys, role=role)
        db.session.add(row)
    row.role = role
    db.session.flush()
    return row


def _membership(org: Organisation, user: User | None) -> Membership | None:
    if user is None:
        return None
    return db.session.execute(
        select(Membership).filter_by(organisation_id=org.id, user_id=user.id)
    ).scalar_one_or_none()


def _require_org(org_name: str) -> Organisation:
    org = find_org(org_name)
    if org is None:
        raise NotFound(f"organisation {org_name!r} does not exist")
    return org


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise Invalid(f"role must be one of {', '.join(ROLES)}")
    return role


def _admins(org: Organisation) -> int:
    return db.session.scalar(
        select(func.count())
        .select_from(Membership)
        .where(Membership.organisation_id == org.id, Membership.role == "admin")
    )


def members(org_name: str) -> list[tuple[User, str]]:
    org = _require_org(org_name)
    rows = db.session.execute(
        select(User, Membership.role)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.organisation_id == org.id)
        .order_by(User.username)
    )
    return [(user, role) for user, role in rows]


def change_member(org_name: str, username: str, role: str) -> Membership:
    """Set a member's role; an organisation always keeps at least one admin."""
    _check_role(role)
    org = _require_org(org_name)
    user = find_user(username)
    if user is None or user.is_robot:
        raise NotFound(f"user {username!r} does not exist")
    current = _membership(org, user)
    if current is not None and current.role == "admin" and role != "admin" and _admins(org) == 1:
        raise Invalid("an organisation must keep at least one admin")
    return set_member(org_name, username, role)


def remove_member(org_name: str, username: str) -> None:
    org = _require_org(org_name)
    user = find_user(username)
    membership = _membership(org, user)
    if membership is None:
        raise NotFound(f"{username!r} is not a member of {org_name}")
    if membership.role == "admin" and _admins(org) == 1:
        raise Invalid("an organisation must keep at least one admin")
    role = membership.role
    db.session.delete(membership)
    db.session.flush()
    audit.record("member.remove", org=org_name, details={"member": username, "role": role})


def set_registry_public(org_name: str, name: str, public: bool) -> Registry:
    registry = find_registry(org_name, name)
    if registry is None:
        raise NotFound(f"registry {org_name}/{name} does not exist")
    previous = registry.public
    registry.public = public
    db.session.flush()
    if previous != public:
        details = {"public": public, "previous": previous}
        audit.record("registry.visibility", org=org_name, registry=name, details=details)
    return registry


# ---- robots ----------------------------------------------------------------------------------


def robot_name(org_name: str, name: str) -> str:
    return f"{org_name}+{name}"


def create_robot(org_name: str, name: str, description: str | None = None) -> User:
    org = _require_org(org_name)
    check_slug("robot", name)
    username = robot_name(org_name, name)
    if find_user(username):
        raise Invalid(f"robot {username!r} already exists")
    robot = User(username=username, robot_org_id=org.id, description=(description or "")[:255])
    db.session.add(robot)
    db.session.flush()
    audit.record("robot.create", org=org_name, details={"robot": username})
    return robot


def find_robot(org_name: str, name: str) -> User:
    org = _require_org(org_name)
    robot = find_user(robot_name(org_name, name))
    if robot is None or robot.robot_org_id != org.id:
        raise NotFound(f"robot {robot_name(org_name, name)!r} does not exist")
    return robot


def robots(org_name: str) -> list[User]:
    org = _require_org(org_name)
    return list(
        db.session.execute(
            select(User).where(User.robot_org_id == org.id).order_by(User.username)
        ).scalars()
    )


def delete_robot(org_name: str, name: str) -> None:
    robot = find_robot(org_name, name)
    now = utcnow()
    for token in db.session.execute(
        select(AccessToken).where(AccessToken.user_id == robot.id)
    ).scalars():
        token.revoked_at = token.revoked_at or now
    db.session.execute(delete(RegistryGrant).where(RegistryGrant.user_id == robot.id))
    db.session.execute(delete(TrustPolicy).where(TrustPolicy.robot_id == robot.id))
    # The row stays (tokens and audit point at it); a robot without grants can do nothing.
    audit.record("robot.delete", org=org_name, details={"robot": robot.username})
    robot.username = f"{robot.username}~deleted~{robot.id}"[:64]
    db.session.flush()


# ---- registry grants -------------------------------------------------------------------------


def grant_registry(org_name: str, registry_name: str, username: str, role: str) -> RegistryGrant:
    _check_role(role)
    registry = find_registry(org_name, registry_name)
    if registry is None:
        raise NotFound(f"registry {org_name}/{registry_name} does not exist")
    user = find_user(username)
    if user is None:
        raise NotFound(f"user {username!r} does not exist")
    if user.is_robot and user.robot_org_id != registry.organisation_id:
        raise Invalid("a robot may only be granted roles in its own organisation")
    row = _set_role(RegistryGrant, role, registry_id=registry.id, user_id=user.id)
    details = {"grantee": username, "role": role}
    audit.record("registry.grant", org=org_name, registry=registry_name, details=details)
    return row


def revoke_registry(org_name: str, registry_name: str, username: str) -> None:
    registry = find_registry(org_name, registry_name)
    user = find_user(username)
    if registry is None or user is None:
        raise NotFound("no such grant")
    done = db.session.execute(
        delete(RegistryGrant).where(
            RegistryGrant.registry_id == registry.id, RegistryGrant.user_id == user.id
        )
    )
    if not done.rowcount:
        raise NotFound("no such grant")
    db.session.flush()
    details = {"grantee": username}
    audit.record("registry.revoke", org=org_name, registry=registry_name, details=details)


def registry_grants(org_name: str, registry_name: str) -> list[tuple[User, str]]:
    registry = find_registry(org_name, registry_name)
    if registry is None:
        raise NotFound(f"registry {org_name}/{registry_name} does not exist")
    rows = db.session.execute(
        select(User, RegistryGrant.role)
        .join(RegistryGrant, RegistryGrant.user_id == User.id)
        .where(RegistryGrant.registry_id == registry.id)
        .order_by(User.username)
    )
    return [(user, role) for user, role in rows]


# ---- trust policies --------------------------------------------------------------------------


def add_trust_policy(
    org_name: str, robot: str, name: str, issuer: str, audience: str, claims: dict
) -> TrustPolicy:
    from app.access.oidc import check_issuer_url

    robot_user = find_robot(org_name, robot)
    check_slug("trust policy", name)
    issuer = check_issuer_url(str(issuer or ""))
    if not audience or not isinstance(audience, str):
        raise Invalid("a trust policy needs an audience")
    if not isinstance(claims, dict) or not claims:
        # Without claim conditions any workflow of the issuer could act as the robot.
        raise Invalid("a trust policy needs at least one required claim, e.g. repository")
    if not all(isinstance(k, str) and isinstance(v, str) and v for k, v in claims.items()):
        raise Invalid("claims map claim names to non-empty glob strings")
    policy = TrustPolicy(
        organisation_id=robot_user.robot_org_id,
        robot_id=robot_user.id,
        name=name,
        issuer=issuer,
        audience=audience,
        claims=claims,
    )
    db.session.add(policy)
    db.session.flush()
    details = {
        "id": policy.id,
        "name": name,
        "robot": robot_user.username,
        "issuer": issuer,
        "audience": audience,
        "claims": claims,
    }
    audit.record("trust_policy.create", org=org_name, details=details)
    return policy


def trust_policies(org_name: str) -> list[TrustPolicy]:
    org = _require_org(org_name)
    return list(
        db.session.execute(
            select(TrustPolicy)
            .where(TrustPolicy.organisation_id == org.id)
            .order_by(TrustPolicy.id)
        ).scalars()
    )


def delete_trust_policy(org_name: str, policy_id: int) -> None:
    org = _require_org(org_name)
    policy = db.session.get(TrustPolicy, policy_id)
    if policy is None or policy.organisation_id != org.id:
        raise NotFound(f"trust policy {policy_id} does not exist")
    details = {"id": policy.id, "name": policy.name, "issuer": policy.issuer}
    db.session.delete(policy)
    db.session.flush()
    audit.record("trust_policy.delete", org=org_name, details=details)


# ---- invitations -----------------------------------------------------------------------------

INVITATION_DAYS = 7


def invite(org_name: str, invitee: str, role: str, inviter: User, days: int = INVITATION_DAYS):
    _check_role(role)
    org = _require_org(org_name)
    invitee = (invitee or "").strip()
    if not invitee or len(invitee) > 255:
        raise Invalid("invite a username or an email address")
    if not 1 <= days <= 90:
        raise Invalid("invitations last 1 to 90 days")
    existing = find_user(invitee)
    if existing is not None and existing.is_robot:
        raise Invalid("robots are not invited; grant them registry roles")
    invitation = Invitation(
        organisation_id=org.id,
        invitee=invitee.lower() if "@" in invitee else invitee,
        role=role,
        invited_by_id=inviter.id,
        expires_at=utcnow() + timedelta(days=days),
    )
    db.session.add(invitation)
    db.session.flush()
    details = {"id": invitation.id, "invitee": invitation.invitee, "role": role, "days": days}
    audit.record("invitation.create", org=org_name, details=details)
    return invitation


def invitations_for(user: User) -> list[Invitation]:
    names = [user.username] + ([user.email.lower()] if user.email else [])
    return list(
        db.session.execute(
            select(Invitation)
            .where(Invitation.invitee.in_(names), Invitation.state == "pending")
            .where(Invitation.expires_at > utcnow())
            .order_by(Invitation.id)
        ).scalars()
    )


def invitations_of(org_name: str) -> list[Invitation]:
    org = _require_org(org_name)
    return list(
        db.session.execute(
            select(Invitation).where(Invitation.organisation_id == org.id).order_by(Invitation.id)
        ).scalars()
    )


def answer(invitation_id: int, user: User, accept: bool) -> Invitation:
    invitation = db.session.get(Invitation, invitation_id)
    if invitation is None or invitation not in invitations_for(user):
        # Someone else's, answered or expired: the same answer, so ids reveal nothing.
        raise NotFound(f"invitation {invitation_id} does not exist or has expired")
    invitation.state = "accepted" if accept else "declined"
    invitation.answered_at = utcnow()
    org = db.session.get(Organisation, invitation.organisation_id)
    details = {"id": invitation.id, "role": invitation.role}
    audit.record(f"invitation.{'accept' if accept else 'decline'}", org=org.name, details=details)
    if accept:
        current = _membership(org, user)
        # Accepting never lowers a role the invitee already has.
        if current is None or ROLES.index(current.role) < ROLES.index(invitation.role):
            set_member(org.name, user.username, invitation.role)
    db.session.flush()
    return invitation


def cancel_invitation(org_name: str, invitation_id: int) -> None:
    org = _require_org(org_name)
    invitation = db.session.get(Invitation, invitation_id)
    if invitation is None or invitation.organisation_id != org.id:
        raise NotFound(f"invitation {invitation_id} does not exist")
    if invitation.state == "pending":
        invitation.state = "cancelled"
        invitation.answered_at = utcnow()
        db.session.flush()
        details = {"id": invitation.id, "invitee": invitation.invitee}
        audit.record("invitation.cancel", org=org_name, details=details)
