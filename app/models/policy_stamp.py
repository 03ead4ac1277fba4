"""One row whose value changes whenever anything an authorization decision, a credential check or
a pull's per-registry settings read changes: organisations, registries, memberships, grants,
users, access tokens, signing and vulnerability policies. Database triggers (migrations
0013_performance and 0014_pull_settings_stamp) write it in the same transaction as the change,
so every replica sees a new stamp exactly when it sees the change, and may keep decisions made
under the old one until then (`app.access.decisions`)."""

from __future__ import annotations

from sqlalchemy import BigInteger
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import db


class PolicyStamp(db.Model):
    __tablename__ = "policy_stamp"
    id: Mapped[int] = mapped_column(primary_key=True)
    # A fresh value per change, never a counter: a rolled-back change's value must never come
    # back for another change, or decisions computed inside that transaction would look current.
    stamp: Mapped[int] = mapped_column(BigInteger, default=0)


# The tables whose triggers write the stamp (migrations 0013_performance and
# 0014_pull_settings_stamp create them).
WATCHED_TABLES = (
    "organisations",
    "registries",
    "memberships",
    "registry_grants",
    "users",
    "access_tokens",
    "signing_policies",
    "vuln_policies",
)
