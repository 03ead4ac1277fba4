"""(principal, action, resource) -> allow/deny: the one decision every route asks for.

Resources are a registry (all repositories of a registry share its rules), an organisation, or
the site. A registry or organisation that does not exist grants nothing, so a denial never tells
whether it exists. Access tokens narrow what their owner may do; they never widen it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import or_, select

from app.access.decisions import StampedMemo
from app.models import Membership, Organisation, Registry, RegistryGrant, User, db

# Registry actions, as they appear in OCI token scopes.
ACTIONS = ("pull", "push", "delete")
ROLE_ACTIONS: dict[str, frozenset[str]] = {
    "viewer": frozenset({"pull"}),
    "writer": frozenset({"pull", "push", "delete"}),
    "admin": frozenset({"pull", "push", "delete"}),
}
# Organisation actions: seeing it (its registries, members, robots) and managing it.
ORG_READ = "org:read"
ORG_ADMIN = "org:admin"
# Site actions.
ORG_CREATE = "org:create"
# One's own account: reading it, and managing its tokens (never with a token: no chains).
ACCOUNT_READ = "account:read"
ACCOUNT_MANAGE = "account:manage"
# Site administration (another user's password), with a site admin's password only.
SITE_ADMIN = "site:admin"
# The actions an access token of scope "read" keeps; everything else is writing.
READ_ACTIONS = frozenset({"pull", ORG_READ})


@dataclass(frozen=True)
class Principal:
    kind: str  # "user", "robot" or "anonymous"
    user_id: int | None = None
    name: str = "anonymous"
    # Set when an access token (or a trust policy's exchange) proved the principal: the token's
    # row, whether it only reads, and the registries ("org/registry") it is limited to.
    token_id: int | None = None
    read_only: bool = False
    registries: tuple[str, ...] | None = None
    # The account's credential epoch when a password proved the principal (see accounts.py).
    epoch: int = 0
    # For a robot proved by a CI ID token: the workload's issuer, subject and the repository and
    # workflow claims (`app.access.workload`), as sorted (name, value) pairs.
    workload: tuple[tuple[str, str], ...] = ()

    @property
    def authenticated(self) -> bool:
        return self.kind != "anonymous"

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.user_id or ''}"

    def limits(self) -> dict:
        """The token limits as JWT claims, so registry tokens carry them on."""
        found: dict
        if self.token_id is None:
            found = {"ep": self.epoch} if self.authenticated else {}
        else:
            found = {"tid": self.token_id, "ro": self.read_only, "regs": self.registries}
        if self.workload:
            found["wl"] = dict(self.workload)
        return found

    @classmethod
    def from_claims(cls, claims: dict) -> Principal:
        regs = claims.get("regs")
        return cls(
            kind=claims.get("kind", "anonymous"),
            user_id=claims.get("uid"),
            name=claims.get("sub", "anonymous"),
            token_id=claims.get("tid"),
            read_only=bool(claims.get("ro", False)),
            registries=tuple(regs) if regs is not None else None,
            epoch=int(claims.get("ep") or 0),
            workload=_workload_pairs(claims.get("wl")),
        )


def _workload_pairs(found) -> tuple[tuple[str, str], ...]:
    if not isinstance(found, dict):
        return ()
    return tuple(sorted((str(k), str(v)) for k, v in found.items()))


ANONYMOUS = Principal("anonymous")
_GRANTED: StampedMemo[frozenset[str]] = StampedMemo(4096)


def principal_for(user: User, token=None, workload: dict[str, str] | None = None) -> Principal:
    """The principal for a user or robot, narrowed by the access token that proved it; a robot
    proved by a CI ID token carries that workload's identity."""
    kind = "robot" if user.is_robot else "user"
    if token is None:
        return Principal(
            kind,
            user.id,
            user.username,
            epoch=user.credential_epoch or 0,
            workload=_workload_pairs(workload),
        )
    return Principal(
        kind,
        user.id,
        user.username,
        token_id=token.id,
        read_only=token.scope == "read",
        registries=tuple(token.registries) if token.registries is not None else None,
        workload=_workload_pairs(getattr(token, "workload_identity", None)),
    )


@dataclass(frozen=True)
class RegistryResource:
    org: str
    registry: str

    @property
    def path(self) -> str:
        return f"{self.org}/{self.registry}"


@dataclass(frozen=True)
class OrgResource:
    org: str


@dataclass(frozen=True)
class SiteResource:
    pass


SITE = SiteResource()
Resource = RegistryResource | OrgResource | SiteResource


def find_registry(org: str, registry: str) -> Registry | None:
    return db.session.execute(
        select(Registry)
        .join(Organisation)
        .where(Organisation.name == org, Registry.name == registry)
    ).scalar_one_or_none()


def find_org(name: str) -> Organisation | None:
    return db.session.execute(
        select(Organisation).where(Organisation.name == name)
    ).scalar_one_or_none()


def role_in(principal: Principal, organisation_id: int) -> str | None:
    """The organisation role of a user. Robots hold roles on registries only."""
    if principal.user_id is None or principal.kind != "user":
        return None
    return db.session.execute(
        select(Membership.role).where(
            Membership.organisation_id == organisation_id,
            Membership.user_id == principal.user_id,
        )
    ).scalar_one_or_none()


def registry_role(principal: Principal, registry_id: int) -> str | None:
    if principal.user_id is None:
        return None
    return db.session.execute(
        select(RegistryGrant.role).where(
            RegistryGrant.registry_id == registry_id,
            RegistryGrant.user_id == principal.user_id,
        )
    ).scalar_one_or_none()


def _narrow(principal: Principal, actions: set[str], registry_path: str | None) -> set[str]:
    if principal.read_only:
        actions &= READ_ACTIONS
    if principal.registries is not None and registry_path not in principal.registries:
        # A token limited to some registries does nothing elsewhere but what anyone may.
        return set()
    return actions


def granted_actions(principal: Principal, org: str, registry: str) -> frozenset[str]:
    """What the principal may do in a registry: asked by every /v2 and index request, so kept
    per process while the policy stamp is unchanged (`app.access.decisions`)."""
    return _GRANTED.get(
        (principal, org, registry), lambda: _granted_actions(principal, org, registry)
    )


def _granted_actions(principal: Principal, org: str, registry: str) -> frozenset[str]:
    reg = find_registry(org, registry)
    if reg is None:
        return frozenset()
    held: set[str] = set()
    for role in (role_in(principal, reg.organisation_id), registry_role(principal, reg.id)):
        if role:
            held |= ROLE_ACTIONS[role]
    held = _narrow(principal, held, f"{org}/{registry}")
    if reg.public:
        held.add("pull")
    return frozenset(held)


def _org_actions(principal: Principal, org_name: str) -> set[str]:
    org = find_org(org_name)
    if org is None or not principal.authenticated:
        return set()
    # Robots push and pull; the organisation is managed by people (role_in ignores robots).
    role = role_in(principal, org.id)
    if role is None:
        return set()
    held = {ORG_READ, ORG_ADMIN} if role == "admin" else {ORG_READ}
    if principal.registries is not None:
        # A token limited to registries cannot manage (or browse) the organisation.
        return set()
    return _narrow(principal, held, None)


def authorize(principal: Principal, action: str, resource: Resource) -> bool:
    """The single decision function: may this principal do this action on this resource?"""
    if isinstance(resource, RegistryResource):
        return action in granted_actions(principal, resource.org, resource.registry)
    if isinstance(resource, OrgResource):
        return action in _org_actions(principal, resource.org)
    if isinstance(resource, SiteResource):
        narrowed = principal.read_only or principal.registries is not None
        if action == ORG_CREATE:
            # People create organisations; robots and narrowed tokens do not.
            return principal.kind == "user" and not narrowed
        if action == ACCOUNT_READ:
            return principal.kind == "user"
        if action == ACCOUNT_MANAGE:
            return principal.kind == "user" and principal.token_id is None
        if action == SITE_ADMIN:
            if principal.kind != "user" or principal.token_id is not None:
                return False
            user = db.session.get(User, principal.user_id)
            return user is not None and user.is_site_admin
        return False
    return False


def allowed(principal: Principal, action: str, org: str, registry: str) -> bool:
    return authorize(principal, action, RegistryResource(org, registry))


def visible_registries(principal: Principal):
    """A select of registry ids whose repositories the principal may pull (for listings)."""
    uid = principal.user_id if principal.kind == "user" else -1
    member_orgs = select(Membership.organisation_id).where(Membership.user_id == uid)
    granted = select(RegistryGrant.registry_id).where(
        RegistryGrant.user_id == (principal.user_id or -1)
    )
    mine = or_(Registry.organisation_id.in_(member_orgs), Registry.id.in_(granted))
    if principal.registries is not None:
        paths = list(principal.registries)
        names = (
            select(Registry.id)
            .join(Organisation)
            .where((Organisation.name + "/" + Registry.name).in_(paths))
        )
        mine = mine & Registry.id.in_(names)
    return select(Registry.id).where(or_(Registry.public.is_(True), mine))
