"""SQLAlchemy models. SQLite for the embedded default, PostgreSQL in production."""

from app.models.base import db
from app.models.content import Blob, BlobLink, Manifest, Repository, Tag, Upload
from app.models.tenancy import Membership, Organisation, Registry, User

__all__ = [
    "Blob",
    "BlobLink",
    "Manifest",
    "Membership",
    "Organisation",
    "Registry",
    "Repository",
    "Tag",
    "Upload",
    "User",
    "db",
]
