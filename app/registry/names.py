"""Repository names, tags and references, per the distribution spec's grammar."""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.registry.errors import RegistryError

_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
NAME = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
TAG = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$")
MAX_NAME = 255
# First path component (`<org>/<registry>/<this>/...`) of the repositories that hold packages as
# OCI artifacts (`cargohold.pypi` for Python files). Valid OCI grammar, so oras and crane pull
# them, but only the package APIs write there: the prefix is reserved as a whole, for the
# package formats to come.
RESERVED_PREFIX = "cargohold."


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


def is_reserved_path(path: str) -> bool:
    """True for the `<path>` part of a repository name that only the package APIs may write."""
    return path.split("/", 1)[0].startswith(RESERVED_PREFIX)
