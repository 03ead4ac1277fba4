"""Personal and robot access tokens: `chp_<public id>_<secret>`, shown once, stored hashed.

The secret is high-entropy, so a keyed SHA-256 (HMAC with the server's key) is enough and keeps
every authenticated request fast; argon2 is for the low-entropy secrets people choose.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select

from app.access import audit
from app.access.policy import find_registry
from app.errors import Invalid
from app.models import AccessToken, User, db
from app.models.base import utcnow

PREFIX = "chp_"
# The username twine and PyPI use with API tokens; any token's own owner name works too.
TOKEN_USERNAME = "__token__"
SCOPES = ("read", "read-write")
_FORMAT = re.compile(r"^chp_([0-9a-f]{16})_([A-Za-z0-9_-]{32,64})$")
# last_used_at is a hint for people, not an audit trail: write it at most once a minute.
_TOUCH_EVERY = timedelta(minutes=1)


def looks_like_token(secret: str) -> bool:
    return secret.startswith(PREFIX)


def public_id(secret: str) -> str | None:
    """The public half of a well-formed token, which names it without revealing it."""
    match = _FORMAT.match(secret)
    return match.group(1) if match else None


def _hash(secret: str) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, secret.encode(), hashlib.sha256).hexdigest()


def create(
    user: User,
    name: str,
    scope: str = "read-write",
    registries: list[str] | None = None,
    expires_at: datetime | None = None,
    workload_identity: dict[str, str] | None = None,
) -> tuple[AccessToken, str]:
    """Return the row and the plaintext token, which is never stored or shown again.
    `workload_identity`: the CI workload a trust policy's exchange issued it to."""
    name = (name or "").strip()
    if not name or len(name) > 64:
        raise Invalid("a token needs a name of 1 to 64 characters")
    if scope not in SCOPES:
        raise Invalid(f"scope must be one of {', '.join(SCOPES)}")
    if expires_at is not None and expires_at <= utcnow():
        raise Invalid("expiry must be in the future")
    if registries is not None:
        if not isinstance(registries, list) or not registries:
            raise Invalid("registries must be a non-empty list of 'org/registry'")
        for path in registries:
            org, _, reg = str(path).partition("/")
            if not reg or find_registry(org, reg) is None:
                raise Invalid(f"registry {path!r} does not exist")
        registries = sorted(set(registries))
    public_id = secrets.token_hex(8)
    secret = f"{PREFIX}{public_id}_{secrets.token_urlsafe(32)}"
    row = AccessToken(
        public_id=public_id,
        secret_hash=_hash(secret),
        user_id=user.id,
        name=name,
        scope=scope,
        workload_identity=workload_identity,
        registries=registries,
        expires_at=expires_at,
    )
    db.session.add(row)
    db.session.flush()
    _audit("token.create", user, row)
    return row, secret


def usable(row: AccessToken | None) -> bool:
    if row is None or row.revoked_at is not None:
        return False
    return row.expires_at is None or row.expires_at > utcnow()


def verify(secret: str) -> AccessToken | None:
    """The live token row for a presented secret, or None; records when it was last used."""
    match = _FORMAT.match(secret)
    if not match:
        return None
    row = db.session.execute(
        select(AccessToken).where(AccessToken.public_id == match.group(1))
    ).scalar_one_or_none()
    if row is None or not hmac.compare_digest(row.secret_hash, _hash(secret)):
        return None
    if not usable(row):
        return None
    now = utcnow()
    if row.last_used_at is None:
        user = db.session.get(User, row.user_id)
        if user is not None:
            _audit("token.first_use", user, row, by_owner=True)
    if row.last_used_at is None or now - row.last_used_at > _TOUCH_EVERY:
        row.last_used_at = now
    return row


def revoke(row: AccessToken) -> None:
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        db.session.flush()
        user = db.session.get(User, row.user_id)
        if user is not None:
            _audit("token.revoke", user, row)


def _audit(action: str, owner: User, row: AccessToken, by_owner: bool = False) -> None:
    """A robot's tokens belong to its organisation's log; personal ones to the site's.
    by_owner: the token's owner, proved by this very token, is the actor."""
    org = owner.username.split("+", 1)[0] if owner.is_robot else None
    details = {
        "token": f"{PREFIX}{row.public_id}",
        "name": row.name,
        "owner": owner.username,
        "scope": row.scope,
    }
    if row.registries:
        details["registries"] = row.registries
    actor = None
    if by_owner:
        here = audit.current()
        kind = "robot" if owner.is_robot else "user"
        actor = audit.Actor(kind, owner.username, owner.id, row.id, here.ci, here.address)
    audit.record(action, org=org, reference=str(row.id), details=details, actor=actor)


def of_user(user: User) -> list[AccessToken]:
    return list(
        db.session.execute(
            select(AccessToken)
            .where(AccessToken.user_id == user.id, AccessToken.revoked_at.is_(None))
            .order_by(AccessToken.id)
        ).scalars()
    )


def describe(row: AccessToken) -> dict:
    def iso(value: datetime | None) -> str | None:
        return value.isoformat() + "Z" if value else None

    return {
        "id": row.id,
        "name": row.name,
        "scope": row.scope,
        "registries": row.registries,
        "created_at": iso(row.created_at),
        "expires_at": iso(row.expires_at),
        "last_used_at": iso(row.last_used_at),
        "revoked": row.revoked_at is not None,
        "prefix": f"{PREFIX}{row.public_id}",
    }
