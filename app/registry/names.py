"""Repository names, tags and references, per the distribution spec's grammar."""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.registry.errors import RegistryError

_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
NAME = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
TAG = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$")
# Organisation and registry names are single path components, kept short for URLs.
SLUG = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")
MAX_NAME = 255


@dataclass(frozen=True)
class RepoName:
    full: str
    org: str
    registry: str
    path: str


def parse_repository(name: str) -> RepoName:
    if len(name) > MAX_NAME:
        raise RegistryError("NAME_INVALID", f"repository name longer than {MAX_NAME} characters")
    if not NAME.match(name):
        raise RegistryError("NAME_INVALID", f"invalid repository name {name!r}")
    parts = name.split("/", 2)
    if len(parts) < 3:
        raise RegistryError(
            "NAME_INVALID", "repository names have the form <organisation>/<registry>/<path>"
        )
    return RepoName(full=name, org=parts[0], registry=parts[1], path=parts[2])


def check_tag(tag: str) -> str:
    if not TAG.match(tag):
        raise RegistryError("MANIFEST_INVALID", f"invalid tag {tag!r}")
    return tag


def check_slug(kind: str, value: str) -> str:
    if not SLUG.match(value) or len(value) > 64:
        raise ValueError(
            f"{kind} name {value!r} must be lowercase letters and digits, "
            "optionally separated by '.', '_' or '-', at most 64 characters"
        )
    return value
