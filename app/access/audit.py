"""Recording the audit log: who did what, to what, from where, with which result.

Core functions call `record` beside the change they make: the event joins the same unit of
work, so it is committed with the change or rolled back with it, at the cost of one insert.
Refusals that roll their request back and must still be kept (a throttled login, a protected
tag) go through `record_refusal`: the HTTP layer writes them once the request's own
transaction has ended (`pending_refusals`). A successful login is recorded as its request
starts, when an insert would hold SQLite's one write lock for all the request's work (a whole
upload's body, for a client that sends Basic credentials): it waits in the request's context
until the view is done, and `write_logins` adds it just before the request commits.

Who acted comes from the request's context, set by the HTTP layer (`begin`, `identify`,
`note_ci`); outside a request (the garbage collector, a command line) the actor is the system,
or whoever `acting_as` names. The core never reads the request itself.
"""

from __future__ import annotations

import contextvars
import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

from app.access.decisions import StampedMemo
from app.access.policy import Principal
from app.caching import BoundedCache
from app.models import AuditEvent, Registry, Repository, db
from app.models.base import utcnow

OK, DENIED, FAILED = "ok", "denied", "failed"
# The most the details of one event keep, serialized; larger ones are cut to a preview.
MAX_DETAILS = 4096
# The CI claims kept from an OIDC ID token: who the job is, not its whole token.
CI_CLAIMS = (
    "iss",
    "sub",
    "aud",
    "repository",
    "repository_owner",
    "repository_id",
    "workflow",
    "workflow_ref",
    "job_workflow_ref",
    "ref",
    "sha",
    "run_id",
    "run_attempt",
    "actor",
    "environment",
    "event_name",
    "project_path",
    "pipeline_id",
    "job_id",
    "namespace_path",
)
MAX_CLAIM = 255


@dataclass(frozen=True)
class Actor:
    kind: str  # "user", "robot", "anonymous", "system"
    name: str | None = None
    user_id: int | None = None
    token_id: int | None = None
    ci: dict | None = None
    address: str | None = None

    @classmethod
    def of(cls, principal: Principal, address: str | None = None) -> Actor:
        name = principal.name if principal.authenticated else None
        return cls(principal.kind, name, principal.user_id, principal.token_id, None, address)


SYSTEM = Actor("system", "system")
# The garbage collector, whichever process runs it.
COLLECTOR = Actor("system", "gc")


@dataclass
class _Context:
    actor: Actor
    refusals: list[dict] = field(default_factory=list)
    logins: list[dict] = field(default_factory=list)


_CONTEXT: contextvars.ContextVar[_Context | None] = contextvars.ContextVar(
    "cargohold_audit", default=None
)


def begin(address: str | None) -> None:
    """A request starts: anonymous from this address until its caller is known."""
    _CONTEXT.set(_Context(Actor("anonymous", address=_cut(address, 64))))


def end() -> None:
    _CONTEXT.set(None)


def current() -> Actor:
    ctx = _CONTEXT.get()
    return ctx.actor if ctx is not None else SYSTEM


def identify(principal: Principal) -> None:
    """The request's caller is known (once per request); CI claims noted before stay."""
    ctx = _CONTEXT.get()
    if ctx is None or not principal.authenticated:
        return
    ci = ctx.actor.ci
    ctx.actor = replace(Actor.of(principal, ctx.actor.address), ci=ci)


def ci_claims(claims: dict | None) -> dict | None:
    """The claims of a CI job worth keeping, each bounded."""
    if not isinstance(claims, dict):
        return None
    kept = {k: _cut(str(claims[k]), MAX_CLAIM) for k in CI_CLAIMS if claims.get(k) is not None}
    return kept or None


def note_ci(claims: dict | None) -> None:
    """A CI job's OIDC claims stand behind this request's robot."""
    ctx = _CONTEXT.get()
    kept = ci_claims(claims)
    if ctx is not None and kept:
        ctx.actor = replace(ctx.actor, ci=kept)


def robot_proved(user_id: int, name: str) -> None:
    """A trust policy accepted a CI job's ID token for this robot: it acts from here on."""
    ctx = _CONTEXT.get()
    if ctx is not None and ctx.actor.kind == "anonymous":
        ctx.actor = replace(ctx.actor, kind="robot", name=name, user_id=user_id)


def current_ci() -> dict | None:
    return current().ci


@contextmanager
def acting_as(actor: Actor) -> Iterator[None]:
    """Record what the block does as `actor` (a command line, a background job)."""
    token = _CONTEXT.set(_Context(actor))
    try:
        yield
    finally:
        _CONTEXT.reset(token)


# ---- recording --------------------------------------------------------------------------------


def _cut(value: str | None, size: int) -> str | None:
    return value if value is None or len(value) <= size else value[: size - 1] + "…"


def _bounded(details: dict | None) -> dict | None:
    if not details:
        return None
    text = json.dumps(details, default=str, sort_keys=True)
    if len(text) <= MAX_DETAILS:
        return json.loads(text)
    return {"truncated": True, "preview": text[: MAX_DETAILS - 64]}


def _row(
    action: str,
    result: str,
    actor: Actor,
    org: str | None,
    registry: str | None,
    repository: str | None,
    reference: str | None,
    details: dict | None,
) -> dict:
    return {
        "at": utcnow(),
        "action": action,
        "result": result,
        "actor_kind": actor.kind,
        "actor_id": actor.user_id,
        "actor_name": _cut(actor.name, 64),
        "token_id": actor.token_id,
        "ci": actor.ci,
        "address": actor.address,
        "org": _cut(org, 64),
        "registry_name": _cut(registry, 64),
        "repository": _cut(repository, 255),
        "reference": _cut(reference, 255),
        "details": _bounded(details),
    }


_INSERT = AuditEvent.__table__.insert()


def record(
    action: str,
    *,
    result: str = OK,
    org: str | None = None,
    registry: str | None = None,
    repository: str | None = None,
    reference: str | None = None,
    details: dict | None = None,
    actor: Actor | None = None,
) -> None:
    """Add one event to the current unit of work."""
    row = _row(action, result, actor or current(), org, registry, repository, reference, details)
    # Written now, in the request's transaction, rather than as an entity the session flushes
    # at commit: nothing reads the event back as an object, and the flush was a quarter of a
    # manifest push's time.
    db.session.execute(_INSERT, row)


def on_repository(
    action: str,
    repo: Repository,
    reference: str | None = None,
    details: dict | None = None,
    result: str = OK,
) -> None:
    """An event about a repository: its organisation and registry are the first two parts of
    its name, so nothing is looked up."""
    _on_repository_named(action, repo.name, reference, details, result)


def on_repository_many(
    repo: Repository, events: Iterable[tuple[str, str | None, dict | None]]
) -> None:
    """Several events about one repository, (action, reference, details), in one call."""
    org, registry = _tenant_of(repo.name)
    actor = current()
    write_many(
        _row(action, OK, actor, org, registry, repo.name, reference, details)
        for action, reference, details in events
    )


def _tenant_of(repository: str) -> tuple[str, str]:
    """The organisation and registry of a repository: the first two parts of its name."""
    org, registry, _ = (repository.split("/", 2) + ["", ""])[:3]
    return org, registry


def _on_repository_named(
    action: str, name: str, reference: str | None, details: dict | None, result: str = OK
) -> None:
    org, registry = _tenant_of(name)
    record(
        action,
        result=result,
        org=org,
        registry=registry,
        repository=name,
        reference=reference,
        details=details,
    )


def record_refusal(action: str, **what) -> None:
    """An event that must outlive the rollback of its request (a refusal); outside a request
    it joins the unit of work like any other."""
    ctx = _CONTEXT.get()
    if ctx is None:
        record(action, result=what.pop("result", DENIED), **what)
        return
    result = what.pop("result", DENIED)
    ctx.refusals.append(
        _row(
            action,
            result,
            ctx.actor,
            what.get("org"),
            what.get("registry"),
            what.get("repository"),
            what.get("reference"),
            what.get("details"),
        )
    )


def refusal_on_repository(action: str, repo: Repository, reference: str | None, why: str):
    org, registry = _tenant_of(repo.name)
    record_refusal(
        action,
        org=org,
        registry=registry,
        repository=repo.name,
        reference=reference,
        details={"reason": why},
    )


def pending_refusals() -> list[dict]:
    ctx = _CONTEXT.get()
    if ctx is None:
        return []
    rows, ctx.refusals = ctx.refusals, []
    return rows


def write_many(rows: Iterable[dict]) -> None:
    rows = list(rows)
    if rows:
        db.session.execute(_INSERT, rows)


def record_many(
    action: str, targets: Iterable[tuple[str | None, dict | None]], actor: Actor | None = None
) -> None:
    """Many site-wide events of one action at once (one statement): (reference, details)."""
    actor = actor or current()
    write_many(_row(action, OK, actor, None, None, None, ref, details) for ref, details in targets)


# ---- logins --------------------------------------------------------------------------------

# A successful login by a client is recorded once per credential, address and method in this
# window: pip and twine send Basic credentials with every request, and each one is a "login".
# A person signing in to the console is recorded every time.
LOGIN_WINDOW = 300.0
_LOGGED_IN: BoundedCache[tuple, bool] = BoundedCache(4096, ttl=LOGIN_WINDOW)


def login_succeeded(principal: Principal, method: str) -> None:
    identify(principal)
    actor = current()
    key = (principal.key, principal.token_id, actor.address, method, bool(actor.ci))
    if not method.startswith("console"):  # a console sign-in is always an event of its own
        if _LOGGED_IN.get(key):
            return
        _LOGGED_IN.put(key, True)
    ctx = _CONTEXT.get()
    if ctx is None:
        record("login", org=_robot_org(principal), details={"method": method})
        return
    details = {"method": method}
    ctx.logins.append(_row("login", OK, actor, _robot_org(principal), None, None, None, details))


def write_logins() -> None:
    """The request's successful logins, into its transaction just before it commits: they
    commit or roll back with it, as every other event of the request does."""
    ctx = _CONTEXT.get()
    if ctx is not None and ctx.logins:
        rows, ctx.logins = ctx.logins, []
        write_many(rows)


def login_failed(account: str | None, method: str, reason: str = "invalid credentials") -> None:
    """Written in the session's transaction: the caller's own commit point keeps it
    (`record_failed_login`)."""
    actor = replace(current(), kind="anonymous", name=_cut(account, 64), user_id=None)
    record(
        "login",
        result=DENIED,
        actor=actor,
        details={"method": method, "reason": reason},
    )


def login_throttled(account: str | None, method: str) -> None:
    ctx = _CONTEXT.get()
    if ctx is not None:
        ctx.actor = replace(ctx.actor, kind="anonymous", name=_cut(account, 64), user_id=None)
    record_refusal("login", details={"method": method, "reason": "throttled"})


def _robot_org(principal: Principal) -> str | None:
    """A robot's logins belong to its organisation's log (its name is `<org>+<name>`)."""
    if principal.kind == "robot" and "+" in principal.name:
        return principal.name.split("+", 1)[0]
    return None


# ---- pulls ---------------------------------------------------------------------------------


# registry id -> Registry.audit_pulls, kept while the policy stamp is unchanged (its triggers
# watch that column): every pull asks.
_PULLS_AUDITED: StampedMemo[bool] = StampedMemo(4096)


def pulls_audited(registry_id: int) -> bool:
    def read() -> bool:
        registry = db.session.get(Registry, registry_id)
        return bool(registry is not None and registry.audit_pulls)

    return _PULLS_AUDITED.get(registry_id, read)


def pulled(
    registry_id: int, repository: str, action: str, reference: str, details: dict | None = None
) -> None:
    """A pull from a repository (by its name), recorded only where its registry asks for it
    (`Registry.audit_pulls`)."""
    if pulls_audited(registry_id):
        _on_repository_named(action, repository, reference, details)


def downloaded(registry: Registry, org: str, repository: str, filename: str) -> None:
    """A Python file downloaded, recorded only where the registry asks for it."""
    if registry.audit_pulls:
        record(
            "python.download",
            org=org,
            registry=registry.name,
            repository=repository,
            reference=filename,
        )


def set_pull_audit(registry: Registry, org: str, on: bool) -> Registry:
    """Switch the auditing of pulls and downloads of one registry on or off."""
    previous = bool(registry.audit_pulls)
    registry.audit_pulls = on
    db.session.flush()
    if previous != on:
        details = {"audit_pulls": on, "previous": previous}
        record("registry.audit_settings", org=org, registry=registry.name, details=details)
    return registry
