"""Project names (PEP 503 / core metadata) and where Python files live in the OCI namespace."""

from __future__ import annotations

import re

from packaging.utils import canonicalize_name

from app.registry.names import RESERVED_PREFIX

# The core-metadata spec's rule for `Name`, as PyPI enforces it on upload.
NAME = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$", re.IGNORECASE)
MAX_NAME = 128

# First path component of every repository of Python files: `<org>/<registry>/<this>/<project>`,
# under the prefix the registry core reserves for the package APIs (see is_reserved_path).
NAMESPACE = RESERVED_PREFIX + "pypi"


def is_valid(name: str) -> bool:
    return len(name) <= MAX_NAME and bool(NAME.match(name))


def normalize(name: str) -> str:
    """PEP 503: runs of -, _ and . become one -, lowercased."""
    return canonicalize_name(name)


def repository(org: str, registry: str, project: str) -> str:
    """The OCI repository of a project; `project` must already be normalized."""
    return f"{org}/{registry}/{NAMESPACE}/{project}"
