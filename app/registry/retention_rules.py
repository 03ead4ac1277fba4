"""What a retention policy may say, and its glob patterns as indexed SQL conditions.

Tag patterns use the grammar of tag immutability rules (`app.registry.immutability`);
repository patterns match a repository's path inside its registry, where `*` also matches `/`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fnmatch import fnmatchcase

from sqlalchemy import ColumnElement

from app.errors import Invalid
from app.models import RetentionPolicy, db
from app.registry import immutability
from app.registry.names import RESERVED_PREFIX

REPOSITORY_PATTERN = re.compile(r"^[a-z0-9_.*?/-]{1,255}$")
MAX_KEEP = 100_000
MAX_DAYS = 36_500
# Per registry: every push-time check and every sweep reads them all.
MAX_POLICIES = 50
FIELDS = (
    "repository_pattern",
    "tag_pattern",
    "keep_count",
    "untagged_days",
    "protect_pattern",
    "enabled",
)


def check_repository_pattern(pattern: str) -> str:
    if not REPOSITORY_PATTERN.match(pattern):
        raise Invalid("repository_pattern is 1 to 255 of a-z 0-9 _ . - / and the wildcards * and ?")
    if pattern.startswith(RESERVED_PREFIX):
        raise Invalid(
            "Python package repositories are out of scope of retention policies: remove "
            "releases through the package API"
        )
    return pattern


@dataclass(frozen=True)
class Rules:
    """A policy's checked fields."""

    repository_pattern: str
    tag_pattern: str
    keep_count: int | None
    untagged_days: int | None
    protect_pattern: str | None
    enabled: bool


def _int(data: dict, name: str, low: int, high: int) -> int | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid(f"{name!r} must be an integer or null")
    if not low <= value <= high:
        raise Invalid(f"{name!r} must be between {low} and {high}")
    return value


def _text(data: dict, name: str) -> str | None:
    value = data.get(name)
    if value is not None and not isinstance(value, str):
        raise Invalid(f"{name!r} must be a string")
    return value


def _tag_pattern(name: str, value: str) -> str:
    try:
        return immutability.check_pattern(value)
    except Invalid as exc:
        raise Invalid(f"{name}: {exc.message}") from None


def check(data: dict, current: RetentionPolicy | None = None) -> Rules:
    """The fields of a new policy (`current` None), or of `current` changed by `data`."""
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise Invalid(f"unknown field(s): {', '.join(unknown)}")
    merged = {f: getattr(current, f) for f in FIELDS} if current else {}
    merged.update(data)
    enabled = merged.get("enabled", True)
    if not isinstance(enabled, bool):
        raise Invalid("'enabled' must be a boolean")
    protect = _text(merged, "protect_pattern")
    repository_pattern = _text(merged, "repository_pattern")
    tag_pattern = _text(merged, "tag_pattern")
    rules = Rules(
        repository_pattern=check_repository_pattern(
            "*" if repository_pattern is None else repository_pattern
        ),
        tag_pattern=_tag_pattern("tag_pattern", "*" if tag_pattern is None else tag_pattern),
        keep_count=_int(merged, "keep_count", 1, MAX_KEEP),
        untagged_days=_int(merged, "untagged_days", 1, MAX_DAYS),
        protect_pattern=None if protect is None else _tag_pattern("protect_pattern", protect),
        enabled=enabled,
    )
    if rules.keep_count is None and rules.untagged_days is None:
        raise Invalid("a policy needs keep_count, untagged_days or both")
    return rules


def matches_repository(policy: RetentionPolicy, path: str) -> bool:
    return fnmatchcase(path, policy.repository_pattern)


def _like(pattern: str) -> str:
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


def glob(column, pattern: str) -> ColumnElement[bool]:
    """`column` matches the glob, case-sensitively, as an index-friendly SQL condition:
    SQLite's GLOB; PostgreSQL's LIKE (patterns hold no brackets, so both read alike)."""
    if db.session.get_bind().dialect.name == "sqlite":
        return column.op("GLOB", is_comparison=True)(pattern)
    return column.like(_like(pattern), escape="\\")
