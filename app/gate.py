"""The one authorization gate. Every route declares, beside itself, the action it needs on a kind
of resource; the gate derives the resource from the route's arguments and decides before the
handler runs (as Distribution's dispatcher derives a request's access, not each handler):

    @bp.route("/orgs/<org>/settings")
    @requires("org:admin", "org")
    def settings(org): ...

A decision needs both the access policy (`app.access.authorize`: roles, grants, public
registries, the access token that proved the caller) and, when the caller holds a registry
token from /auth/token, that token's `access` claim. Refusals are core errors; each blueprint's
one error mapper renders them in its protocol's format.

`declared_routes(app)` lists every route with its requirement, from the same declarations; the
app refuses to start when a route has none (`verify`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from flask import Flask

from app.access import (
    ORG_READ,
    SITE,
    OrgResource,
    RegistryResource,
    audit,
    authorize,
)
from app.access.policy import Resource
from app.auth.credentials import Caller, current_caller
from app.errors import Denied, NotFound, Unauthenticated
from app.registry.names import RepoName, is_reserved_path

# What a registry token must name for the action, and what a client should ask for when it lacks
# it: pushing also needs pull (clients check for existing blobs first).
CHALLENGE_ACTIONS = {"pull": "pull", "push": "pull,push", "delete": "delete"}
TOKENS_REFUSED = "registry tokens are for /v2; use a password or an access token"

# Special values of Target.claim.
ANY_CLAIM = "any"  # any registry token will do (the claim has no say)
LATER = "later"  # the handler checks the claim itself once it knows the resource (a body names it)


@dataclass(frozen=True)
class Requirement:
    """What a route needs: an action on a kind of resource. action None: the kind decides alone
    ("public": anyone; "login": any presented credentials)."""

    action: str | None
    kind: str

    @property
    def label(self) -> str:
        return self.action or self.kind


@dataclass(frozen=True)
class Target:
    """What one request asks for, derived from the route's arguments by its resource kind."""

    resource: Resource | None  # None: presenting credentials is all the policy asks
    claim: tuple[str, str] | str | None = None  # (type, name) a registry token must hold
    scope: str | None = None  # token scope a client may ask the token service for
    label: str = ""  # how refusals name the resource
    tokens: bool = True  # False: registry tokens are not credentials here at all
    hide_org: bool = False  # outsiders are told the organisation does not exist
    read_only: str | None = None  # why writing is refused even to those allowed


Kind = Callable[[str | None, dict], Target | None]
KINDS: dict[str, Kind] = {}


def kind(name: str) -> Callable[[Kind], Kind]:
    """Register how a kind of resource is derived from a route's arguments."""

    def register(fn: Kind) -> Kind:
        KINDS[name] = fn
        return fn

    return register


@kind("public")
def _public(_action, _args) -> None:
    return None


@kind("login")
def _login(_action, _args) -> Target:
    return Target(None, ANY_CLAIM)


@kind("catalog")
def _catalog(_action, _args) -> Target:
    return Target(None, ("registry", "catalog"), "registry:catalog:*", "the catalog")


@kind("site")
def _site(_action, _args) -> Target:
    return Target(SITE, tokens=False)


@kind("org")
def _org(_action, args) -> Target:
    return Target(OrgResource(args["org"]), tokens=False, hide_org=True)


@kind("registry")
def _registry(_action, args) -> Target:
    path = f"{args['org']}/{args['registry']}"
    return Target(RegistryResource(args["org"], args["registry"]), label=path, tokens=False)


@kind("repository")
def _repository(action, args) -> Target:
    name: RepoName = args["name"]
    read_only = None
    if action != "pull" and is_reserved_path(name.path):
        # Packages live here as OCI artifacts; only their own API keeps them whole.
        read_only = f"{name.full} is managed by its package API"
    return Target(
        RegistryResource(name.org, name.registry),
        ("repository", name.full),
        f"repository:{name.full}:{CHALLENGE_ACTIONS.get(action or '', action)}",
        name.full,
        read_only=read_only,
    )


def _holds(caller: Caller, action: str | None, claim) -> bool:
    if caller.access is None or claim in (ANY_CLAIM, LATER):
        return True
    if not isinstance(claim, tuple):
        return False
    held = caller.access.get(claim, frozenset())
    return action in held or "*" in held


def _allows(caller: Caller, action: str | None, target: Target) -> bool:
    if target.resource is None:
        return caller.presented
    return action is not None and authorize(caller.principal, action, target.resource)


def decide(caller: Caller, action: str | None, target: Target) -> None:
    """Return when the caller may; raise the refusal otherwise."""
    if caller.access is not None and not target.tokens:
        raise Unauthenticated(TOKENS_REFUSED)
    allowed = _allows(caller, action, target)
    if allowed and _holds(caller, action, target.claim):
        if target.read_only:
            raise Denied(target.read_only)
        return
    if allowed and caller.access is not None and target.scope:
        # Held by role but not in this token: the client fetches a wider one.
        what = f"{action} on {target.label}" if action else target.label
        raise Unauthenticated(
            f"token does not grant {what}",
            scope=target.scope,
            error="insufficient_scope",
        )
    if not caller.principal.authenticated:
        raise Unauthenticated(scope=target.scope)
    org = target.resource if target.hide_org else None
    if isinstance(org, OrgResource) and not authorize(caller.principal, ORG_READ, org):
        raise NotFound(f"organisation {org.org!r} not found")
    where = f" {target.label}" if target.label else ""
    _audit_denial(action, target)
    raise Denied(f"{caller.principal.name} may not {action}{where}")


def _audit_denial(action: str | None, target: Target) -> None:
    """An authenticated caller refused: a security event of the organisation it aimed at."""
    resource = target.resource
    what = {"details": {"action": action, "resource": target.label or None}}
    if isinstance(resource, RegistryResource):
        what.update(org=resource.org, registry=resource.registry)
    elif isinstance(resource, OrgResource):
        what.update(org=resource.org)
    if isinstance(target.claim, tuple) and target.claim[0] == "repository":
        what["repository"] = target.claim[1]
    audit.record_refusal("access.denied", **what)


def permits(action: str, kind_name: str, *, by_role: bool = False, **args) -> bool:
    """Whether the caller may, without refusing: for optional parts of a request. by_role:
    whether the policy alone allows it, whatever a registry token names."""
    target = KINDS[kind_name](action, args)
    if target is None:
        return True
    caller = current_caller()
    if not _allows(caller, action, target):
        return False
    return by_role or _holds(caller, action, target.claim)


def require(action: str | None, kind_name: str, **args) -> Caller | None:
    """Check a requirement inside a handler, where the resource is known only from the body.
    A public route reads no credentials here (None): what it is sent is its own business (the
    metrics token, the token service's Basic credentials), never a refusal of the gate's."""
    target = KINDS[kind_name](action, args)
    if target is None:
        return None
    caller = current_caller()
    decide(caller, action, target)
    return caller


def requires(action: str | None, kind_name: str) -> Callable:
    """Declare a route's requirement; put it under the route decorator."""
    if kind_name not in KINDS:
        raise RuntimeError(f"no resource kind {kind_name!r}")
    requirement = Requirement(action, kind_name)

    def decorate(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def guarded(*args, **kwargs):
            require(action, kind_name, **kwargs)
            return fn(*args, **kwargs)

        guarded.requirement = requirement  # type: ignore[attr-defined]
        return guarded

    return decorate


# ---- the inventory ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DeclaredRoute:
    method: str
    endpoint: str
    rule: str
    requirement: Requirement | None


def dispatches(table: Sequence[tuple[str, str, Callable]]) -> Callable:
    """Mark a view that dispatches to handlers by a table of (method, rule, handler); each
    handler declares its own requirement."""

    def decorate(fn: Callable) -> Callable:
        fn.subroutes = table  # type: ignore[attr-defined]
        return fn

    return decorate


def declared_routes(app: Flask) -> Iterator[DeclaredRoute]:
    """Every (method, endpoint) the app serves, with its declared requirement (None: missing).
    HEAD is served wherever GET is, under the same requirement."""
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        view = app.view_functions[rule.endpoint]
        subroutes = getattr(view, "subroutes", None)
        if subroutes is not None:
            prefix = rule.endpoint.rsplit(".", 1)[0]
            for method, pattern, handler in subroutes:
                req = getattr(handler, "requirement", None)
                for m in (method, "HEAD") if method == "GET" else (method,):
                    yield DeclaredRoute(m, f"{prefix}:{handler.__name__}", pattern, req)
            continue
        for method in sorted((rule.methods or set()) - {"OPTIONS"}):
            yield DeclaredRoute(
                method, rule.endpoint, rule.rule, getattr(view, "requirement", None)
            )


def verify(app: Flask) -> None:
    """Refuse to start with a route that declares no requirement."""
    missing = sorted(
        {f"{r.method} {r.endpoint}" for r in declared_routes(app) if not r.requirement}
    )
    if missing:
        raise RuntimeError(f"routes without an authorization requirement: {', '.join(missing)}")
