"""A person's own credentials: changing or resetting a password, and whether a credential minted
earlier (a registry token, a refresh token, a web session) still stands.

Every password change or reset bumps `User.credential_epoch`. What was minted from a password
carries the epoch of its day and is refused once the epoch has moved on; what was minted from
an access token carries the token's id and is refused once that token is revoked or expired.
"""

from __future__ import annotations

from datetime import datetime

from flask import current_app

from app.access import audit, throttle
from app.access.decisions import StampedMemo
from app.access.policy import Principal
from app.errors import Denied, Invalid, TooManyRequests
from app.models import AccessToken, User, db
from app.models.base import utcnow


class WrongPassword(Invalid):
    """The current password given with a change is not the account's."""


def _identity():
    return current_app.extensions["cargohold.identity"]


def _set(user: User, new_password: str) -> None:
    if user.is_robot:
        raise Invalid("robots have no password; they use access tokens or trust policies")
    _identity().set_password(user, new_password)
    user.credential_epoch = (user.credential_epoch or 0) + 1
    db.session.flush()


def change_password(user: User, current_password: str, new_password: str) -> None:
    """The account holder's own change: the current password must be right. A wrong one counts
    as a failed login of the account, and also under a key of the change alone, which the
    request's own successful Basic login does not clear, so a stolen session or password cannot
    guess at leisure. The caller keeps the count when this raises WrongPassword
    (`credentials.keep_failure_count`)."""
    keys = (throttle.account(user.username, current_password), f"password-change:{user.id}")
    for key in keys:
        wait = throttle.retry_after(key, None)
        if wait is not None:
            raise TooManyRequests(
                "too many wrong passwords; try again later", headers={"Retry-After": str(wait)}
            )
    proved = _identity().authenticate(user.username, current_password)
    if proved is None or proved.id != user.id:
        for key in keys:
            throttle.failed(key, None)
        audit.record_refusal("password.change", details={"user": user.username})
        raise WrongPassword("the current password is not right")
    throttle.succeeded(keys[1])
    _set(user, new_password)
    audit.record("password.change", details={"user": user.username})


def reset_password(user: User, new_password: str, by: User | None = None) -> None:
    """An administrator's reset, without the current password: `by` is the site admin doing it,
    None for the operator at the command line."""
    if by is not None and not by.is_site_admin:
        raise Denied(f"{by.username} may not reset other users' passwords")
    _set(user, new_password)
    audit.record("password.reset", details={"user": user.username})


def epoch_of(user: User) -> int:
    """What a web session stores at login and compares on each request."""
    return user.credential_epoch or 0


def still_current(principal: Principal) -> bool:
    """Whether the credential a token or session was minted from still stands. Asked on every
    request that carries a registry token, so the answer is kept while the policy stamp is
    unchanged (revoking a token or changing a password changes it); a token's expiry is
    compared with the clock each time."""
    if not principal.authenticated:
        return True
    stands, expires_at = _STANDING.get(principal, lambda: _standing(principal))
    return stands and (expires_at is None or expires_at > utcnow())


def _standing(principal: Principal) -> tuple[bool, datetime | None]:
    if principal.token_id is not None:
        row = db.session.get(AccessToken, principal.token_id)
        if row is None or row.revoked_at is not None or row.user_id != principal.user_id:
            return False, None
        return True, row.expires_at
    user = db.session.get(User, principal.user_id)
    return user is not None and epoch_of(user) == principal.epoch, None


_STANDING: StampedMemo[tuple[bool, datetime | None]] = StampedMemo(4096)
