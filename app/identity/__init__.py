"""The IdentityProvider port: turn presented credentials into a user, whoever vouches for them."""

from __future__ import annotations

from typing import Protocol

from flask import current_app

from app.errors import Invalid
from app.models import User


class IdentityProvider(Protocol):
    def authenticate(self, username: str, password: str) -> User | None: ...

    def set_password(self, user: User, password: str) -> None: ...


def provider() -> IdentityProvider:
    """The provider the app was configured with (`create_app` chooses it once)."""
    return current_app.extensions["cargohold.identity"]


class IdentityUnavailable(Exception):
    """The service that checks passwords could not answer; the client may retry."""


def check_username(username: str) -> str:
    if not username or len(username) > 64 or ":" in username or "+" in username:
        # ':' ends a Basic username; '+' is how robot names are told apart from people's.
        raise Invalid("usernames are 1 to 64 characters and contain no ':' or '+'")
    return username
