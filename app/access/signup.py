"""Sign-ups from the identity provider: the versioned message the sign-up trigger publishes, and
making its user here (linked to the pool's `sub`), with an invitation accepted or a personal
organisation, as configured. Every step may run twice: a redelivered message changes nothing.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.access import tenancy
from app.access.policy import find_org, find_registry
from app.errors import CoreError, Invalid
from app.identity.cognito import LinkConflict, link_user
from app.models import Membership, User, db

log = logging.getLogger(__name__)

MESSAGE_TYPE = "cargohold.signup"
VERSION = 1
MAX_MESSAGE = 64 * 1024
PERSONAL_ORG = ("always", "uninvited", "never")


class BadMessage(ValueError):
    """A message that no retry can make acceptable: it belongs in the dead-letter queue."""


@dataclass(frozen=True)
class SignUp:
    sub: str
    username: str
    user_pool_id: str
    email: str | None = None
    email_verified: bool = False
    attributes: dict[str, str] = field(default_factory=dict)
    invitation: int | None = None


def _text(data: dict, name: str, limit: int, required: bool = True) -> str | None:
    value = data.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value or len(value) > limit:
        raise BadMessage(f"{name!r} must be a string of 1 to {limit} characters")
    return value


def parse(body: str | bytes) -> SignUp:
    """A sign-up message, checked field by field, or BadMessage."""
    if len(body) > MAX_MESSAGE:
        raise BadMessage("message too large")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadMessage(f"not JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("type") != MESSAGE_TYPE:
        raise BadMessage(f"not a {MESSAGE_TYPE} message")
    if data.get("version") != VERSION:
        raise BadMessage(f"unsupported message version {data.get('version')!r}")
    attributes = data.get("attributes") or {}
    if not isinstance(attributes, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in attributes.items()
    ):
        raise BadMessage("'attributes' must map names to strings")
    invitation = data.get("invitation")
    if invitation is not None:
        if isinstance(invitation, str) and invitation.isdigit():
            invitation = int(invitation)
        if not isinstance(invitation, int) or isinstance(invitation, bool) or invitation < 1:
            raise BadMessage("'invitation' must be an invitation id")
    email = _text(data, "email", 255, required=False)
    return SignUp(
        sub=_text(data, "sub", 64),
        username=_text(data, "username", 128),
        user_pool_id=_text(data, "user_pool_id", 64),
        email=email.lower() if email else None,
        email_verified=data.get("email_verified") is True,
        attributes=attributes,
        invitation=invitation,
    )


def _is_admin_of(org_id: int, user: User) -> bool:
    role = db.session.execute(
        select(Membership.role).where(
            Membership.organisation_id == org_id, Membership.user_id == user.id
        )
    ).scalar_one_or_none()
    return role == "admin"


def _memberships(user: User) -> int:
    rows = db.session.execute(select(Membership.id).where(Membership.user_id == user.id))
    return len(rows.all())


def personal_org_names(user: User) -> list[str]:
    """The names a user's personal organisation may take, in order: the username as a slug, then
    that slug with a part of the `sub` when someone else holds the plain one."""
    slug = re.sub(r"[^a-z0-9]+", "-", user.username.lower()).strip("-")[:55] or "user"
    suffix = re.sub(r"[^a-z0-9]", "", (user.cognito_sub or str(user.id)).lower())[:8]
    return [slug, f"{slug}-{suffix}"]


def ensure_personal_org(user: User, registry: str) -> str:
    for name in personal_org_names(user):
        org = find_org(name)
        if org is None:
            try:
                with db.session.begin_nested():
                    org = tenancy.create_org(name, user)
            except IntegrityError:
                org = find_org(name)  # made by a concurrent delivery of the same message
        if org is not None and _is_admin_of(org.id, user):
            if registry and find_registry(name, registry) is None:
                try:
                    with db.session.begin_nested():
                        tenancy.create_registry(name, registry)
                except IntegrityError:
                    pass  # made by a concurrent delivery of the same message
            return name
    raise BadMessage(f"no free name for a personal organisation of {user.username!r}")


def provision(signup: SignUp, settings) -> User:
    """Create or update the user of a sign-up, then join them to an organisation; raises
    BadMessage when the sign-up cannot be applied however often it is retried."""
    if settings.cognito_user_pool_id and signup.user_pool_id != settings.cognito_user_pool_id:
        raise BadMessage(f"sign-up from user pool {signup.user_pool_id!r}, not ours")
    if settings.signup_personal_org not in PERSONAL_ORG:
        raise ValueError(f"CARGOHOLD_SIGNUP_PERSONAL_ORG must be one of {', '.join(PERSONAL_ORG)}")
    email = signup.email if signup.email_verified else None
    try:
        user = link_user(signup.sub, signup.username, email, None)
    except (LinkConflict, Invalid) as exc:
        raise BadMessage(str(exc)) from None
    if signup.invitation is not None:
        try:
            invitation = tenancy.answer(signup.invitation, user, accept=True)
            log.info("invitation %s accepted by %s", invitation.id, user.username)
        except CoreError:
            # Expired, cancelled, already answered or for someone else: the sign-up stands.
            log.info("invitation %s not open to %s", signup.invitation, user.username)
    mode = settings.signup_personal_org
    if mode == "always" or (mode == "uninvited" and _memberships(user) == 0):
        ensure_personal_org(user, settings.signup_registry)
    return user
