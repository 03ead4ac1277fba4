"""Authorization for /v2 routes: the token's access claim and the access policy must both agree."""

from __future__ import annotations

from app.access import allowed
from app.auth.credentials import Caller, current_caller, unauthorized
from app.pypi.names import is_reserved_path
from app.registry.errors import RegistryError
from app.registry.names import RepoName

# What a client should ask the token service for when it lacks an action.
CHALLENGE_ACTIONS = {"pull": "pull", "push": "pull,push", "delete": "delete"}


def may(caller: Caller, action: str, name: RepoName) -> bool:
    if not allowed(caller.principal, action, name.org, name.registry):
        return False
    if caller.access is None:
        return True
    held = caller.access.get(("repository", name.full), frozenset())
    return action in held or "*" in held


def authorize(action: str, name: RepoName, also: tuple[str, ...] = ()) -> Caller:
    """`also`: further scopes the request may use, named in the challenge beside the target's so
    a client that fetches one token gets all it needs (a mount's source)."""
    caller = current_caller()
    if may(caller, action, name):
        if action != "pull" and is_reserved_path(name.path):
            # Python packages live here as OCI artifacts; only their own API keeps them whole.
            raise RegistryError("DENIED", f"{name.full} is managed by the Python package API")
        return caller
    scope = " ".join((f"repository:{name.full}:{CHALLENGE_ACTIONS[action]}", *also))
    if not caller.principal.authenticated:
        raise unauthorized("authentication required", scope=scope)
    if caller.access is not None and allowed(caller.principal, action, name.org, name.registry):
        raise unauthorized(
            f"token does not grant {action} on {name.full}", scope=scope, error="insufficient_scope"
        )
    raise RegistryError("DENIED", f"{caller.principal.name} may not {action} {name.full}")
