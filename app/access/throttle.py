"""Failed-login throttling per account and per client address, in the database so that every
replica counts the same failures. A locked key answers 429 until its window ends."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from sqlalchemy import delete

from app.models import LoginThrottle, db
from app.models.base import utcnow


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


def _keys(username: str, address: str | None) -> list[tuple[str, int]]:
    lim = limits()
    keys = [(f"user:{username.lower()[:250]}", lim.per_account)]
    if address:
        keys.append((f"addr:{address[:250]}", lim.per_address))
    return keys


def retry_after(username: str, address: str | None) -> int | None:
    """Seconds until a login may be tried again, or None when it may be tried now."""
    now = utcnow()
    for key, limit in _keys(username, address):
        row = db.session.get(LoginThrottle, key)
        if row is None:
            continue
        ends = row.window_start + limits().window
        if row.failures >= limit and ends > now:
            return max(1, int((ends - now).total_seconds()))
    return None


def failed(username: str, address: str | None) -> None:
    now, window = utcnow(), limits().window
    try:
        for key, _limit in _keys(username, address):
            # Reading the second key flushes the first: a concurrent insert of the same key
            # can fail there as well as at the commit.
            row = db.session.get(LoginThrottle, key)
            if row is None:
                db.session.add(LoginThrottle(key=key, failures=1, window_start=now))
            elif row.window_start + window <= now:
                row.failures, row.window_start = 1, now
            else:
                row.failures += 1
        db.session.commit()
    except Exception:
        # Two replicas inserting the same key at once: one count is lost, nothing else.
        db.session.rollback()


def succeeded(username: str) -> None:
    """A correct login clears the account's count (a read, and a write only when needed)."""
    key = f"user:{username.lower()[:250]}"
    if db.session.get(LoginThrottle, key) is not None:
        db.session.execute(delete(LoginThrottle).where(LoginThrottle.key == key))
        db.session.commit()
