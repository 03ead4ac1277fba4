"""(principal, action, resource) -> allow/deny.

Resources are registries (all repositories of a registry share its rules) and the catalog. A
registry that does not exist grants nothing, so a denial never tells whether it exists.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from app.models import Membership, Organisation, Registry, db

ACTIONS = ("pull", "push", "delete")
ROLE_ACTIONS: dict[str, frozenset[str]] = {
    "viewer": frozenset({"pull"}),
    "writer": frozenset({"pull", "push", "delete"}),
    "admin": frozenset({"pull", "push", "delete"}),
}


@dataclass(frozen=True)
class Principal:
    kind: str  # "user" or "anonymous"
    user_id: int | None = None
    name: str = "anonymous"

    @property
    def authenticated(self) -> bool:
        return self.kind != "anonymous"

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.user_id or ''}"


ANONYMOUS = Principal("anonymous")


def find_registry(org: str, registry: str) -> Registry | None:
    return db.session.execute(
        select(Registry)
        .join(Organisation)
        .where(Organisation.name == org, Registry.name == registry)
    ).scalar_one_or_none()


def role_in(principal: Principal, organisation_id: int) -> str | None:
    if principal.user_id is None:
        return None
    return db.session.execute(
        select(Membership.role).where(
            Membership.organisation_id == organisation_id,
            Membership.user_id == principal.user_id,
        )
    ).scalar_one_or_none()


def granted_actions(principal: Principal, org: str, registry: str) -> frozenset[str]:
    reg = find_registry(org, registry)
    if reg is None:
        return frozenset()
    actions: set[str] = set()
    if reg.public:
        actions.add("pull")
    role = role_in(principal, reg.organisation_id)
    if role:
        actions |= ROLE_ACTIONS[role]
    return frozenset(actions)


def allowed(principal: Principal, action: str, org: str, registry: str) -> bool:
    return action in granted_actions(principal, org, registry)
