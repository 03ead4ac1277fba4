"""Names of organisations, registries, robots and trust policies: single URL path components."""

from __future__ import annotations

import re

from app.errors import Invalid

SLUG = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")
MAX_SLUG = 64


def check_slug(kind: str, value: str) -> str:
    if not SLUG.match(value) or len(value) > MAX_SLUG:
        raise Invalid(
            f"{kind} name {value!r} must be lowercase letters and digits, "
            f"optionally separated by '.', '_' or '-', at most {MAX_SLUG} characters"
        )
    return value
