"""/api/v1 vulnerabilities: the database's state, reports per manifest and per Python file, and
each registry's blocking policy with its allow-list of accepted advisories."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from flask import current_app, jsonify
from sqlalchemy import select

from app.access import ORG_ADMIN, ORG_READ
from app.access.policy import find_registry
from app.api.framework import ApiError, field_of, json_body, route
from app.auth.credentials import current_caller
from app.digests import is_digest
from app.errors import Invalid
from app.models import Registry, VulnAllowance, VulnPolicy, db
from app.models.base import utcnow
from app.registry import manifest_store, repositories
from app.registry.names import parse_repository
from app.registry.python import files as listing
from app.registry.python.names import normalize
from app.registry.vulnerabilities import policy, reports, status
from app.registry.vulnerabilities.osv import ID

REGISTRY = "/orgs/<org>/registries/<registry>"
MAX_REASON = 1024


def _iso(value) -> str | None:
    return value.isoformat() + "Z" if value else None


def _registry(org: str, registry: str) -> Registry:
    reg = find_registry(org, registry)
    if reg is None:
        raise ApiError(404, "NOT_FOUND", f"registry {org}/{registry} not found")
    return reg


@route("GET", "/vulnerabilities/database", None, "public")
def vulnerability_database():
    """The vulnerability database: its version, when it was imported, its size."""
    return jsonify(status.database_status())


# ---- reports ---------------------------------------------------------------------------------


@route(
    "GET",
    REGISTRY + "/repositories/<path:repository>/manifests/<digest>/vulnerabilities",
    "pull",
    "registry",
)
def manifest_vulnerabilities(org: str, registry: str, repository: str, digest: str):
    """A manifest's vulnerability report: an image's from its SBOM referrers, an index's from
    its children, a Python file's from its name and version."""
    if not is_digest(digest):
        raise ApiError(400, "INVALID", "a manifest is named by its digest here")
    repo = repositories.require(parse_repository(f"{org}/{registry}/{repository}"))
    manifest = manifest_store.find(repo, digest)
    store = current_app.extensions["cargohold.store"]
    report = reports.manifest_report(store, repo, manifest)
    return jsonify(_with_policy(repo.registry_id, report))


@route("GET", REGISTRY + "/python/projects/<project>/vulnerabilities", "pull", "registry")
def python_vulnerabilities(org: str, registry: str, project: str):
    """Vulnerability reports for each file of a Python project."""
    reg = _registry(org, registry)
    target = listing.Target(org, registry, reg)
    files = listing.live_files(listing.project(target, normalize(project)))
    return jsonify(
        {
            "project": normalize(project),
            "database": reports.database_json(reports.current_version()),
            "files": [_with_policy(reg.id, reports.python_file_report(f)) for f in files],
        }
    )


def _with_policy(registry_id: int, report: dict) -> dict:
    """The report with what the registry's policy makes of it: `blocked` lists the advisories
    that refuse a pull now."""
    found = policy.policy_of(registry_id)
    blocked = []
    if policy.active(found):
        blocked = policy.blocking(found, report["findings"], policy.allowed_ids(registry_id))
    return {**report, "blocked": [f["id"] for f in blocked]}


# ---- policy ----------------------------------------------------------------------------------


def policy_json(found: VulnPolicy | None) -> dict:
    if found is None:
        return {"block_at": None, "unknown": "allow", "updated_at": None}
    return {
        "block_at": found.block_at,
        "unknown": found.unknown,
        "updated_at": _iso(found.updated_at),
    }


@route("GET", REGISTRY + "/vulnerability-policy", ORG_READ, "org")
def get_vulnerability_policy(org: str, registry: str):
    """The registry's vulnerability policy: block pulls at severity >= block_at."""
    return jsonify(policy_json(policy.policy_of(_registry(org, registry).id)))


@route(
    "PUT",
    REGISTRY + "/vulnerability-policy",
    ORG_ADMIN,
    "org",
    {"block_at": ("number", True), "unknown": ("string", False)},
)
def put_vulnerability_policy(org: str, registry: str):
    """Set the policy: block_at a CVSS score 0-10 or low/medium/high/critical (null: off);
    unknown "allow" or "block" for findings without a severity."""
    reg = _registry(org, registry)
    data = json_body()
    if "block_at" not in data:
        raise ApiError(400, "INVALID", "'block_at' is required (null turns blocking off)")
    block_at = policy.parse_threshold(data["block_at"])
    unknown = field_of(data, "unknown", str, default="allow")
    if unknown not in policy.UNKNOWN:
        raise ApiError(400, "INVALID", "'unknown' must be 'allow' or 'block'")
    found = policy.policy_of(reg.id)
    if found is None:
        found = VulnPolicy(registry_id=reg.id)
        db.session.add(found)
    found.block_at, found.unknown, found.updated_at = block_at, unknown, utcnow()
    db.session.flush()
    return jsonify(policy_json(found))


# ---- allow-list ------------------------------------------------------------------------------


def allowance_json(a: VulnAllowance) -> dict:
    return {
        "advisory": a.advisory_id,
        "reason": a.reason,
        "expires_at": _iso(a.expires_at),
        "expired": a.expires_at <= utcnow(),
        "created_by": a.created_by,
        "created_at": _iso(a.created_at),
    }


_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_expiry(value: str) -> datetime:
    """An ISO 8601 date (the entry lasts through that day, UTC) or date and time."""
    try:
        if _DATE.match(value):
            day = datetime.fromisoformat(value)
            return day.replace(hour=23, minute=59, second=59)
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if moment.tzinfo is not None:
            # Year 1 east of UTC or year 9999 west of it has no UTC time.
            moment = moment.astimezone(UTC).replace(tzinfo=None)
    except (ValueError, OverflowError):
        raise Invalid("expires_at must be an ISO 8601 date or date-time") from None
    return moment


@route("GET", REGISTRY + "/vulnerability-allowlist", ORG_READ, "org")
def list_vulnerability_allowlist(org: str, registry: str):
    """Accepted advisories of the registry, with their expiry dates."""
    reg = _registry(org, registry)
    rows = db.session.execute(
        select(VulnAllowance)
        .where(VulnAllowance.registry_id == reg.id)
        .order_by(VulnAllowance.advisory_id)
    ).scalars()
    return jsonify([allowance_json(a) for a in rows])


@route(
    "POST",
    REGISTRY + "/vulnerability-allowlist",
    ORG_ADMIN,
    "org",
    {"advisory": ("string", True), "expires_at": ("string", True), "reason": ("string", False)},
)
def add_vulnerability_allowance(org: str, registry: str):
    """Accept an advisory until a date: it blocks no pull in this registry until then
    (posting an accepted advisory again replaces its expiry and reason)."""
    reg = _registry(org, registry)
    data = json_body()
    advisory = field_of(data, "advisory", str, required=True)
    if not ID.match(advisory):
        raise ApiError(
            400, "INVALID", "'advisory' must be an advisory id such as GHSA-... or CVE-..."
        )
    expires_at = parse_expiry(field_of(data, "expires_at", str, required=True))
    if expires_at <= utcnow():
        raise ApiError(400, "INVALID", "'expires_at' must be in the future")
    reason = field_of(data, "reason", str)
    if reason is not None and len(reason) > MAX_REASON:
        raise ApiError(400, "INVALID", f"'reason' is at most {MAX_REASON} characters")
    found = db.session.execute(
        select(VulnAllowance).where(
            VulnAllowance.registry_id == reg.id, VulnAllowance.advisory_id == advisory
        )
    ).scalar_one_or_none()
    status_code = 200 if found is not None else 201
    if found is None:
        found = VulnAllowance(registry_id=reg.id, advisory_id=advisory)
        db.session.add(found)
    found.expires_at, found.reason = expires_at, reason
    found.created_by = current_caller().principal.name[:64]
    found.created_at = utcnow()
    db.session.flush()
    resp = jsonify(allowance_json(found))
    resp.status_code = status_code
    return resp


@route("DELETE", REGISTRY + "/vulnerability-allowlist/<advisory_id>", ORG_ADMIN, "org")
def delete_vulnerability_allowance(org: str, registry: str, advisory_id: str):
    """Withdraw the acceptance of an advisory."""
    reg = _registry(org, registry)
    found = db.session.execute(
        select(VulnAllowance).where(
            VulnAllowance.registry_id == reg.id, VulnAllowance.advisory_id == advisory_id
        )
    ).scalar_one_or_none()
    if found is None:
        raise ApiError(404, "NOT_FOUND", f"{advisory_id} is not on the allow-list")
    db.session.delete(found)
    db.session.flush()
    return "", 204
