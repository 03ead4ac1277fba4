"""Who exists: users, organisations, their registries and memberships."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import db, utcnow

ROLES = ("viewer", "writer", "admin")


class User(db.Model):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str | None] = mapped_column(String(255))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    # Site administrators manage organisations; they get no implicit access to tenant content.
    is_site_admin: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Robots are users owned by one organisation, named `<org>+<name>`, with no password: they
    # authenticate with their own access tokens or through a trust policy.
    robot_org_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"), index=True)
    description: Mapped[str | None] = mapped_column(String(255))
    # Bumped by every password change or reset. Registry tokens and refresh tokens minted from
    # the password carry it and stop working once it moves on; a web session can do the same.
    credential_epoch: Mapped[int] = mapped_column(default=0, server_default=false())
    # The Cognito user pool's `sub` for users whose password Cognito checks; None for local ones.
    cognito_sub: Mapped[str | None] = mapped_column(String(64), unique=True, index=True)

    @property
    def is_robot(self) -> bool:
        return self.robot_org_id is not None


class Organisation(db.Model):
    __tablename__ = "organisations"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    registries: Mapped[list[Registry]] = relationship(back_populates="organisation")


class Registry(db.Model):
    __tablename__ = "registries"
    __table_args__ = (UniqueConstraint("organisation_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    name: Mapped[str] = mapped_column(String(64))
    public: Mapped[bool] = mapped_column(default=False)
    # Whether pulls and downloads are audited too (writes always are).
    audit_pulls: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    organisation: Mapped[Organisation] = relationship(back_populates="registries")


class Membership(db.Model):
    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("organisation_id", "user_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RegistryGrant(db.Model):
    """A role on one registry alone, for a user or robot (whatever their organisation role)."""

    __tablename__ = "registry_grants"
    __table_args__ = (UniqueConstraint("registry_id", "user_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    registry_id: Mapped[int] = mapped_column(ForeignKey("registries.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AccessToken(db.Model):
    """A personal or robot token. Only a keyed hash of its secret is kept."""

    __tablename__ = "access_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    # The public half of the token (`chp_<public>_<secret>`), to find the row without a scan.
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    scope: Mapped[str] = mapped_column(String(16))  # "read" or "read-write"
    # ["org/registry", ...] the token is limited to, or None for every registry of the owner.
    registries: Mapped[list | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column()
    last_used_at: Mapped[datetime | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()
    # A token a trust policy's exchange issued: the CI workload's issuer, subject and claims
    # (`app.access.workload`), recorded with what it uploads.
    workload_identity: Mapped[dict | None] = mapped_column(JSON)


class TrustPolicy(db.Model):
    """Lets a CI job's OIDC ID token stand for a robot, with no stored secret."""

    __tablename__ = "trust_policies"
    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    robot_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    issuer: Mapped[str] = mapped_column(String(255))
    audience: Mapped[str] = mapped_column(String(255))
    # {"claim": "glob", ...}: every one must match the ID token's claim value.
    claims: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Invitation(db.Model):
    __tablename__ = "invitations"
    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    # A username or an email address; matched against the invitee when they answer.
    invitee: Mapped[str] = mapped_column(String(255), index=True)
    role: Mapped[str] = mapped_column(String(16))
    invited_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    state: Mapped[str] = mapped_column(String(16), default="pending")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    answered_at: Mapped[datetime | None] = mapped_column()


class LoginThrottle(db.Model):
    """Failed logins per account and per client address, shared by every replica."""

    __tablename__ = "login_throttle"
    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0)
    window_start: Mapped[datetime] = mapped_column(default=utcnow)
