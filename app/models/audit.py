"""The audit log: one append-only row per write or security event, and who caused it.

Rows name organisations, registries and repositories by name, not by foreign key: an event
outlives what it describes (a deleted robot, a deleted repository), and reading the log never
joins. Only the retention purge removes rows.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import db, utcnow

# SQLite assigns ids only to an INTEGER PRIMARY KEY; PostgreSQL gets 64 bits.
EVENT_ID = BigInteger().with_variant(Integer(), "sqlite")


class AuditEvent(db.Model):
    __tablename__ = "audit_events"
    __table_args__ = (
        # An organisation's log, newest first, paged by id (keyset).
        Index("ix_audit_events_org_id", "org", "id"),
        # "Who pushed this?" and "when was it deleted?" for one repository and digest or tag.
        Index("ix_audit_events_target", "repository", "reference"),
    )
    id: Mapped[int] = mapped_column(EVENT_ID, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    result: Mapped[str] = mapped_column(String(16), default="ok")  # ok, denied, failed
    # Who: "user", "robot", "anonymous" (a failed login names the account it tried) or
    # "system" (the garbage collector, a command line).
    actor_kind: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[int | None] = mapped_column(Integer)
    actor_name: Mapped[str | None] = mapped_column(String(64), index=True)
    token_id: Mapped[int | None] = mapped_column(Integer)
    # A CI job's OIDC claims (issuer, subject, repository, workflow...) when one acted.
    ci: Mapped[dict | None] = mapped_column(JSON)
    address: Mapped[str | None] = mapped_column(String(64))
    # What: None for site-wide events (logins, personal tokens, garbage collection).
    org: Mapped[str | None] = mapped_column(String(64))
    registry_name: Mapped[str | None] = mapped_column(String(64))
    repository: Mapped[str | None] = mapped_column(String(255))
    reference: Mapped[str | None] = mapped_column(String(255))
    details: Mapped[dict | None] = mapped_column(JSON)
