"""The IdentityProvider port: turn presented credentials into a user, whoever vouches for them."""

from __future__ import annotations

from typing import Protocol

from flask import current_app

from app.models import User


class IdentityProvider(Protocol):
    def authenticate(self, username: str, password: str) -> User | None: ...

    def set_password(self, user: User, password: str) -> None: ...


def provider() -> IdentityProvider:
    """The provider the app was configured with (`create_app` chooses it once)."""
    return current_app.extensions["cargohold.identity"]
