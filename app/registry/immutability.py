"""Tag immutability: per-registry patterns (`v*`, `release-*`, `*`) whose tags never move and
are never deleted. Pushing the identical manifest under a protected tag again is not a move."""

from __future__ import annotations

import re
from fnmatch import fnmatchcase

from sqlalchemy import select

from app.errors import Invalid
from app.models import Repository, Tag, TagRule, db
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


def guard_move(repo: Repository, tag: str, manifest_id: int) -> None:
    """Refuse pointing an existing protected tag at another manifest."""
    current = db.session.execute(
        select(Tag.manifest_id).where(Tag.repository_id == repo.id, Tag.name == tag)
    ).scalar_one_or_none()
    if current is None or current == manifest_id:
        return
    if (pattern := rule_for(repo.registry_id, tag)) is not None:
        raise _refuse(tag, pattern, "moved")


def guard_delete(repo: Repository, tags: list[str] | tuple[str, ...]) -> None:
    for tag in tags:
        if (pattern := rule_for(repo.registry_id, tag)) is not None:
            raise _refuse(tag, pattern, "deleted")
