"""Users and argon2 password hashes in our own database: the embedded default."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select

from app.errors import Invalid
from app.models import User, db

MIN_PASSWORD = 8
# argon2id at OWASP's recommended minimum (Password Storage Cheat Sheet: 19 MiB, 2 passes, one
# lane) rather than argon2-cffi's default (64 MiB, 3 passes, 4 lanes): each verification in
# flight holds its memory, and a worker serves several at once. Hashes made with other
# parameters still verify, and are rewritten with these at the next successful login.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# Verifying against a dummy hash for unknown users keeps response times from revealing names.
_DUMMY = _hasher.hash("not-a-real-password")


class LocalIdentity:
    def authenticate(self, username: str, password: str) -> User | None:
        user = db.session.execute(
            select(User).where(User.username == username)
        ).scalar_one_or_none()
        try:
            _hasher.verify(user.password_hash if user and user.password_hash else _DUMMY, password)
        except (VerificationError, InvalidHashError):
            return None
        if user is None or not user.password_hash:
            return None
        if _hasher.check_needs_rehash(user.password_hash):
            user.password_hash = _hasher.hash(password)
        return user

    def set_password(self, user: User, password: str) -> None:
        if len(password) < MIN_PASSWORD:
            raise Invalid(f"passwords need at least {MIN_PASSWORD} characters")
        user.password_hash = _hasher.hash(password)
