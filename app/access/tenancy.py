"""Creating tenants: users, organisations, registries, memberships. Errors are ValueErrors."""

from __future__ import annotations

from sqlalchemy import select

from app.access.policy import find_registry
from app.identity.local import LocalIdentity
from app.models import Membership, Organisation, Registry, User, db
from app.models.tenancy import ROLES
from app.registry.names import check_slug


def find_user(username: str) -> User | None:
    return db.session.execute(select(User).where(User.username == username)).scalar_one_or_none()


def find_org(name: str) -> Organisation | None:
    return db.session.execute(
        select(Organisation).where(Organisation.name == name)
    ).scalar_one_or_none()


def create_user(username: str, password: str, site_admin: bool = False) -> User:
    if not username or len(username) > 64 or ":" in username:
        raise ValueError("usernames are 1 to 64 characters and contain no ':'")
    if find_user(username):
        raise ValueError(f"user {username!r} already exists")
    user = User(username=username, is_site_admin=site_admin)
    LocalIdentity().set_password(user, password)
    db.session.add(user)
    db.session.commit()
    return user


def create_org(name: str, owner: User) -> Organisation:
    check_slug("organisation", name)
    if find_org(name):
        raise ValueError(f"organisation {name!r} already exists")
    org = Organisation(name=name)
    db.session.add(org)
    db.session.flush()
    db.session.add(Membership(organisation_id=org.id, user_id=owner.id, role="admin"))
    db.session.commit()
    return org


def create_registry(org_name: str, name: str, public: bool = False) -> Registry:
    check_slug("registry", name)
    org = find_org(org_name)
    if org is None:
        raise ValueError(f"organisation {org_name!r} does not exist")
    if find_registry(org_name, name):
        raise ValueError(f"registry {org_name}/{name} already exists")
    registry = Registry(organisation_id=org.id, name=name, public=public)
    db.session.add(registry)
    db.session.commit()
    return registry


def set_member(org_name: str, username: str, role: str) -> Membership:
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    org, user = find_org(org_name), find_user(username)
    if org is None:
        raise ValueError(f"organisation {org_name!r} does not exist")
    if user is None:
        raise ValueError(f"user {username!r} does not exist")
    membership = db.session.execute(
        select(Membership).where(
            Membership.organisation_id == org.id, Membership.user_id == user.id
        )
    ).scalar_one_or_none()
    if membership is None:
        membership = Membership(organisation_id=org.id, user_id=user.id, role=role)
        db.session.add(membership)
    membership.role = role
    db.session.commit()
    return membership
