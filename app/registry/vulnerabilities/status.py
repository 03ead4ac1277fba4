"""The vulnerability database's state, for the API, the console and `flask vulns status`."""

from __future__ import annotations

from sqlalchemy import func, select

from app.models import Advisory, db
from app.models.base import utcnow
from app.registry.vulnerabilities.importer import current_version


def database_status(with_source: bool = False) -> dict:
    """The source path is the operator's alone: the API, open to anyone, leaves it out."""
    version = current_version()
    if version is None:
        return {"loaded": False, "version": None, "advisories": 0}
    age = int((utcnow() - version.imported_at).total_seconds())
    out = {
        "loaded": True,
        "version": version.id,
        "imported_at": version.imported_at.isoformat() + "Z",
        "age_seconds": max(age, 0),
        "advisories": db.session.execute(select(func.count()).select_from(Advisory)).scalar_one(),
        "last_import": {
            "read": version.advisories,
            "added": version.added,
            "updated": version.updated,
            "skipped": version.skipped,
        },
    }
    if with_source:
        out["source"] = version.source
    return out


def age_text(seconds: int) -> str:
    if seconds < 3600:
        return f"{seconds // 60} minute(s)"
    if seconds < 86400 * 2:
        return f"{seconds // 3600} hour(s)"
    return f"{seconds // 86400} day(s)"
