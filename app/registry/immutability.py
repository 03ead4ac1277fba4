"""Tag immutability: per-registry patterns (`v*`, `release-*`, `*`) whose tags never move and
are never deleted. Pushing the identical manifest under a protected tag again is not a move."""

from __future__ import annotations

import re
from fnmatch import fnmatchcase

from sqlalchemy import select

from app.access import audit
from app.errors import Invalid, NotFound
from app.models import Registry, Repository, TagRule, db
from app.registry.errors import RegistryError

# Tag characters plus the glob's * and ?; no brackets, so a pattern reads as it matches.
PATTERN = re.compile(r"^[A-Za-z0-9_.*?-]{1,128}$")


def check_pattern(pattern: str) -> str:
    if not PATTERN.match(pattern):
        raise Invalid("a pattern is 1 to 128 of A-Z a-z 0-9 _ . - and the wildcards * and ?")
    return pattern


def rule_for(registry_id: int, tag: str) -> str | None:
    patterns = db.session.execute(
        select(TagRule.pattern).where(TagRule.registry_id == registry_id).order_by(TagRule.id)
    ).scalars()
    return next((p for p in patterns if fnmatchcase(tag, p)), None)


def _refuse(tag: str, pattern: str, what: str) -> RegistryError:
    return RegistryError(
        "DENIED", f"tag {tag!r} is immutable (rule {pattern!r}): it cannot be {what}"
    )


def guard_move(repo: Repository, tag: str, manifest_id: int, current: int | None) -> None:
    """Refuse pointing an existing protected tag (now at `current`) at another manifest. The
    caller reads `current` just before it writes the tag, and again when a concurrent push
    created it meanwhile (`manifest_store._point`)."""
    if current is None or current == manifest_id:
        return
    if (pattern := rule_for(repo.registry_id, tag)) is not None:
        audit.refusal_on_repository("tag.move", repo, tag, f"immutable (rule {pattern!r})")
        raise _refuse(tag, pattern, "moved")


def guard_delete(repo: Repository, tags: list[str] | tuple[str, ...]) -> None:
    for tag in tags:
        if (pattern := rule_for(repo.registry_id, tag)) is not None:
            why = f"immutable (rule {pattern!r})"
            audit.refusal_on_repository("tag.delete", repo, tag, why)
            raise _refuse(tag, pattern, "deleted")


def _names(registry: Registry) -> tuple[str, str]:
    org = registry.organisation.name
    return org, registry.name


def add_rule(registry: Registry, pattern: str) -> TagRule | None:
    """A new rule, or None when the registry has it already."""
    pattern = check_pattern(pattern)
    exists = db.session.execute(
        select(TagRule).where(TagRule.registry_id == registry.id, TagRule.pattern == pattern)
    ).scalar_one_or_none()
    if exists is not None:
        return None
    rule = TagRule(registry_id=registry.id, pattern=pattern)
    db.session.add(rule)
    db.session.flush()
    org, name = _names(registry)
    details = {"id": rule.id, "pattern": pattern}
    audit.record("immutability.create", org=org, registry=name, details=details)
    return rule


def remove_rule(registry: Registry, rule_id: int) -> None:
    rule = db.session.get(TagRule, rule_id)
    if rule is None or rule.registry_id != registry.id:
        raise NotFound(f"rule {rule_id} not found")
    details = {"id": rule.id, "pattern": rule.pattern}
    db.session.delete(rule)
    db.session.flush()
    org, name = _names(registry)
    audit.record("immutability.delete", org=org, registry=name, details=details)
