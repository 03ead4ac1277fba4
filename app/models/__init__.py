"""SQLAlchemy models. SQLite for the embedded default, PostgreSQL in production."""

from app.models.base import db
from app.models.content import Blob, BlobLink, Manifest, Repository, Tag, Upload
from app.models.lifecycle import GcCandidate, GcStats, ManifestReference, TagRule
from app.models.policy_stamp import PolicyStamp
from app.models.python import PythonFile, PythonProject
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

__all__ = [
    "AccessToken",
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
    "Registry",
    "Repository",
    "Tag",
    "TagRule",
    "Upload",
    "User",
    "db",
]
