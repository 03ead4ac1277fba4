"""SQLAlchemy models. SQLite for the embedded default, PostgreSQL in production."""

# Registers its engine events: writers of a SQLite file queue in the process first.
from app.models import sqlite_writes  # noqa: F401
from app.models.audit import AuditEvent
from app.models.base import db
from app.models.content import Blob, BlobLink, Manifest, Repository, Tag, Upload
from app.models.lifecycle import GcCandidate, GcStats, ManifestReference, TagRule
from app.models.policy_stamp import PolicyStamp
from app.models.python import PythonFile, PythonProject
from app.models.quotas import QuotaContent, QuotaScope
from app.models.retention import RetentionPolicy
from app.models.signing import SignatureCheck, SigningKey, SigningPolicy
from app.models.tenancy import (
    AccessToken,
    Invitation,
    LoginThrottle,
    Membership,
    Organisation,
    Registry,
    RegistryGrant,
    TrustPolicy,
    User,
)
from app.models.vulnerabilities import (
    Advisory,
    AffectedPackage,
    VulnAllowance,
    VulnDatabaseVersion,
    VulnPolicy,
    VulnReport,
)

__all__ = [
    "AccessToken",
    "AuditEvent",
    "Advisory",
    "AffectedPackage",
    "VulnAllowance",
    "VulnDatabaseVersion",
    "VulnPolicy",
    "VulnReport",
    "Invitation",
    "LoginThrottle",
    "RegistryGrant",
    "TrustPolicy",
    "Blob",
    "GcCandidate",
    "GcStats",
    "ManifestReference",
    "BlobLink",
    "Manifest",
    "Membership",
    "PolicyStamp",
    "Organisation",
    "PythonFile",
    "PythonProject",
    "QuotaContent",
    "QuotaScope",
    "Registry",
    "SignatureCheck",
    "SigningKey",
    "SigningPolicy",
    "Repository",
    "RetentionPolicy",
    "Tag",
    "TagRule",
    "Upload",
    "User",
    "db",
]
