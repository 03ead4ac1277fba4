"""/api/v1 storage quotas: site admins set limits; an organisation's members read its usage."""

from __future__ import annotations

from flask import jsonify

from app.access import ORG_READ, SITE_ADMIN
from app.access.policy import find_org, find_registry
from app.api.framework import ApiError, json_body, route
from app.registry import quotas

# A BIGINT column holds it.
MAX_LIMIT = 2**63 - 1
BODY = {"limit_bytes": ("integer", True)}


def _org_id(org: str) -> int:
    found = find_org(org)
    if found is None:
        raise ApiError(404, "NOT_FOUND", f"organisation {org!r} not found")
    return found.id


def _registry_id(org: str, registry: str) -> int:
    found = find_registry(org, registry)
    if found is None:
        raise ApiError(404, "NOT_FOUND", f"registry {org}/{registry} not found")
    return found.id


def _limit() -> int | None:
    """`limit_bytes` from the body: a whole number of bytes, or null for no limit."""
    data = json_body()
    unknown = sorted(set(data) - set(BODY))
    if unknown:
        raise ApiError(400, "INVALID", f"unknown field(s): {', '.join(map(repr, unknown))}")
    if "limit_bytes" not in data:
        raise ApiError(400, "INVALID", "'limit_bytes' is required (bytes, or null: no limit)")
    value = data["limit_bytes"]
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(400, "INVALID", "'limit_bytes' must be a whole number of bytes or null")
    if not 0 <= value <= MAX_LIMIT:
        raise ApiError(400, "INVALID", f"'limit_bytes' must be between 0 and {MAX_LIMIT}")
    return value


@route("GET", "/orgs/<org>/quota", ORG_READ, "org")
def get_org_quota(org: str):
    """The organisation's storage limit and usage (each blob counted once)."""
    return jsonify(quotas.usage(quotas.ORG, _org_id(org)).as_json())


@route("PUT", "/orgs/<org>/quota", SITE_ADMIN, "site", BODY)
def put_org_quota(org: str):
    """Set the organisation's storage limit in bytes (null: unlimited; site admins)."""
    org_id = _org_id(org)
    return jsonify(quotas.set_limit(quotas.ORG, org_id, _limit()).as_json())


@route("GET", "/orgs/<org>/registries/<registry>/quota", ORG_READ, "org")
def get_registry_quota(org: str, registry: str):
    """The registry's storage limit and usage (each blob counted once)."""
    return jsonify(quotas.usage(quotas.REGISTRY, _registry_id(org, registry)).as_json())


@route("PUT", "/orgs/<org>/registries/<registry>/quota", SITE_ADMIN, "site", BODY)
def put_registry_quota(org: str, registry: str):
    """Set the registry's storage limit in bytes (null: unlimited; site admins)."""
    registry_id = _registry_id(org, registry)
    return jsonify(quotas.set_limit(quotas.REGISTRY, registry_id, _limit()).as_json())


@route("GET", "/admin/quotas", SITE_ADMIN, "site")
def list_quotas():
    """Every organisation's and registry's storage limit and usage (site admins)."""
    return jsonify({"quotas": [quotas.usage(k, i).as_json() for k, i in quotas.all_scopes()]})
