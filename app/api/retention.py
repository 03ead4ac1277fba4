"""/api/v1 retention policies of a registry: list, create, change, delete, and the dry-run
report of what they would remove now."""

from __future__ import annotations

from itertools import islice

from flask import jsonify, request
from sqlalchemy import func, select

from app.access import ORG_ADMIN
from app.access.policy import find_registry
from app.api.framework import ApiError, json_body, route
from app.limits import MAX_INT
from app.models import Registry, RetentionPolicy, db
from app.registry import retention, retention_rules

POLICIES = "/orgs/<org>/registries/<registry>/retention-policies"
BODY = {
    "repository_pattern": ("string", False),
    "tag_pattern": ("string", False),
    "keep_count": ("integer", False),
    "untagged_days": ("integer", False),
    "protect_pattern": ("string", False),
    "enabled": ("boolean", False),
}
REPORT_LIMIT = 1000
MAX_REPORT_LIMIT = 10_000


def _iso(value) -> str | None:
    return value.isoformat() + "Z" if value else None


def policy_json(policy: RetentionPolicy) -> dict:
    return {
        "id": policy.id,
        "repository_pattern": policy.repository_pattern,
        "tag_pattern": policy.tag_pattern,
        "keep_count": policy.keep_count,
        "untagged_days": policy.untagged_days,
        "protect_pattern": policy.protect_pattern,
        "enabled": policy.enabled,
        "created_at": _iso(policy.created_at),
        "updated_at": _iso(policy.updated_at),
        "last_run_at": _iso(policy.last_run_at),
        "last_run_removed": policy.last_run_removed,
    }


def _registry(org: str, registry: str) -> Registry:
    reg = find_registry(org, registry)
    if reg is None:
        raise ApiError(404, "NOT_FOUND", f"registry {org}/{registry} not found")
    return reg


def _policy(reg: Registry, policy_id: int) -> RetentionPolicy:
    # An id past a BIGINT would make the database driver raise, not answer "none".
    policy = db.session.get(RetentionPolicy, policy_id) if policy_id <= MAX_INT else None
    if policy is None or policy.registry_id != reg.id:
        raise ApiError(404, "NOT_FOUND", f"retention policy {policy_id} not found")
    return policy


def _set(policy: RetentionPolicy, rules: retention_rules.Rules) -> None:
    for name in retention_rules.FIELDS:
        setattr(policy, name, getattr(rules, name))


@route("GET", POLICIES, ORG_ADMIN, "org")
def list_retention_policies(org: str, registry: str):
    """Retention policies of a registry."""
    reg = _registry(org, registry)
    return jsonify({"policies": [policy_json(p) for p in retention.policies_of(reg.id)]})


@route("POST", POLICIES, ORG_ADMIN, "org", BODY)
def create_retention_policy(org: str, registry: str):
    """Add a retention policy: keep the N newest tags matching a pattern, remove manifests
    untagged for D days, never touch tags matching a protection pattern."""
    reg = _registry(org, registry)
    rules = retention_rules.check(json_body())
    count = db.session.execute(
        select(func.count(RetentionPolicy.id)).where(RetentionPolicy.registry_id == reg.id)
    ).scalar_one()
    if count >= retention_rules.MAX_POLICIES:
        raise ApiError(
            409, "CONFLICT", f"a registry has at most {retention_rules.MAX_POLICIES} policies"
        )
    policy = RetentionPolicy(registry_id=reg.id, last_run_removed=0)
    _set(policy, rules)
    db.session.add(policy)
    db.session.flush()
    resp = jsonify(policy_json(policy))
    resp.status_code = 201
    return resp


@route("PATCH", POLICIES + "/<int:policy_id>", ORG_ADMIN, "org", BODY)
def update_retention_policy(org: str, registry: str, policy_id: int):
    """Change some fields of a retention policy (null clears keep_count, untagged_days or
    protect_pattern)."""
    policy = _policy(_registry(org, registry), policy_id)
    _set(policy, retention_rules.check(json_body(), policy))
    db.session.flush()
    return jsonify(policy_json(policy))


@route("DELETE", POLICIES + "/<int:policy_id>", ORG_ADMIN, "org")
def delete_retention_policy(org: str, registry: str, policy_id: int):
    """Remove a retention policy."""
    db.session.delete(_policy(_registry(org, registry), policy_id))
    db.session.flush()
    return "", 204


@route("GET", "/orgs/<org>/registries/<registry>/retention-report", ORG_ADMIN, "org")
def retention_report(org: str, registry: str):
    """Dry run: what the registry's enabled policies would remove now, and which removes it."""
    reg = _registry(org, registry)
    raw = request.args.get("limit", str(REPORT_LIMIT))
    if (
        not (raw.isascii() and raw.isdigit() and len(raw) <= 5)
        or not 1 <= int(raw) <= MAX_REPORT_LIMIT
    ):
        raise ApiError(400, "INVALID", f"limit must be between 1 and {MAX_REPORT_LIMIT}")
    limit = int(raw)
    prefix = f"{org}/{registry}/"
    found = []
    for policy in retention.policies_of(reg.id):
        if policy.enabled and len(found) <= limit:
            found.extend(
                islice(retention.apply(policy, prefix, dry_run=True), limit + 1 - len(found))
            )
    return jsonify(
        {
            "registry": f"{org}/{registry}",
            "dry_run": True,
            "truncated": len(found) > limit,
            "removed": [r.as_json() for r in found[:limit]],
        }
    )
