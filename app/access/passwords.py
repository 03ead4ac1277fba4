"""Passwords the server makes up, such as the first administrator's."""

from __future__ import annotations

import secrets


def generate_password(nbytes: int = 18) -> str:
    """URL-safe random text that never starts with "-": command-line clients (`twine -p`,
    `podman login -p`) would read such a password as an option. Drawing again keeps every
    accepted password equally likely."""
    while True:
        password = secrets.token_urlsafe(nbytes)
        if not password.startswith("-"):
            return password
