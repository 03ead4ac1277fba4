"""Failed-login throttling per account and per client address, in the database so that every
replica counts the same failures. A locked key answers 429 until its window ends.

The account is whose credential was tried: the user for a password, the token itself (by its
public id) for an access token. Never the shared `__token__` name, which would let anyone lock
every token of every user out at once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from sqlalchemy import bindparam, delete, select

from app.access import access_tokens
from app.models import LoginThrottle, db
from app.models.base import execute_flushed, utcnow


@dataclass(frozen=True)
class Limits:
    window: timedelta
    per_account: int
    per_address: int


def limits() -> Limits:
    s = current_app.extensions["cargohold.settings"]
    return Limits(
        timedelta(seconds=s.login_window), s.login_max_failures, s.login_max_failures_per_address
    )


def account(username: str, password: str) -> str | None:
    """The throttle key of the credential being tried, or None when it names no one."""
    if access_tokens.looks_like_token(password):
        public_id = access_tokens.public_id(password)
        return f"token:{public_id}" if public_id else None
    if username == access_tokens.TOKEN_USERNAME:
        return None  # not a token: cannot succeed, only the address counts it
    return f"user:{username.lower()[:250]}"


def _keys(account: str | None, address: str | None) -> list[tuple[str, int]]:
    lim = limits()
    keys = [(account, lim.per_account)] if account else []
    if address:
        keys.append((f"addr:{address[:250]}", lim.per_address))
    return keys


@dataclass(frozen=True)
class Standing:
    """Where a login's keys stand, read once before the credentials are checked."""

    wait: int | None  # seconds until a login may be tried again; None: now
    counted: frozenset[str]  # the keys that have a count of failures

    def has_count(self, key: str | None) -> bool:
        return key is not None and key in self.counted


_T = LoginThrottle.__table__
# Every key of a login in one statement, built once: every Basic login reads it.
_COUNTS = select(_T.c.key, _T.c.failures, _T.c.window_start).where(
    _T.c.key.in_(bindparam("keys", expanding=True))
)


def standing(account: str | None, address: str | None) -> Standing:
    keys = _keys(account, address)
    if not keys:
        return Standing(None, frozenset())
    rows = execute_flushed(_COUNTS, {"keys": [k for k, _ in keys]})
    counts = {key: (failures, start) for key, failures, start in rows}
    now, window = utcnow(), limits().window
    for key, limit in keys:
        if key not in counts:
            continue
        failures, start = counts[key]
        ends = start + window
        if failures >= limit and ends > now:
            return Standing(max(1, int((ends - now).total_seconds())), frozenset(counts))
    return Standing(None, frozenset(counts))


def retry_after(account: str | None, address: str | None) -> int | None:
    """Seconds until a login may be tried again, or None when it may be tried now."""
    return standing(account, address).wait


def failed(account: str | None, address: str | None) -> None:
    now, window = utcnow(), limits().window
    # No autoflush while reading the second key: the caller's commit point writes both counts at
    # once, where a concurrent insert of the same key is caught.
    with db.session.no_autoflush:
        for key, _limit in _keys(account, address):
            row = db.session.get(LoginThrottle, key)
            if row is None:
                db.session.add(LoginThrottle(key=key, failures=1, window_start=now))
            elif row.window_start + window <= now:
                row.failures, row.window_start = 1, now
            else:
                row.failures += 1


def succeeded(account: str | None, before: Standing | None = None) -> None:
    """A correct login clears the account's count: a write only when there is one (on SQLite a
    write waits for the database's one writer), known from the `standing` read before the
    check when the caller has it: failures others recorded meanwhile stay."""
    if before is None:
        before = standing(account, None)
    if before.has_count(account):
        db.session.execute(delete(LoginThrottle).where(LoginThrottle.key == account))
