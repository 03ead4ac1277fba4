"""/api/v1 lifecycle: garbage collection figures, graph-aware delete, tag immutability."""

from __future__ import annotations

from flask import jsonify, request
from sqlalchemy import select

from app.access import ORG_ADMIN, ORG_READ, SITE_ADMIN
from app.api.framework import ApiError, field_of, json_body, route
from app.api.shapes import created, iso, registry_row
from app.models import TagRule, db
from app.registry import deletion, gc, immutability, repositories
from app.registry.names import is_reserved_path, parse_repository

# ---- garbage collection ----------------------------------------------------------------------


@route("GET", "/admin/gc", SITE_ADMIN, "site")
def gc_status():
    """Garbage collection: candidates pending, bytes reclaimed, the last run."""
    figures = gc.status()
    figures["last_run_at"] = iso(figures["last_run_at"])
    return jsonify(figures)


# ---- graph-aware manifest deletion -----------------------------------------------------------

TRUE_WORDS = ("1", "true", "yes")
FALSE_WORDS = ("", "0", "false", "no")


@route(
    "DELETE",
    "/orgs/<org>/registries/<registry>/repositories/<path:repository>/manifests/<digest>",
    "delete",
    "registry",
)
def delete_manifest(org, registry, repository, digest):
    """Delete a manifest with its referrers and unused index children (?dry_run=true lists
    what would go and changes nothing)."""
    flag = request.args.get("dry_run", "").lower()
    if flag not in TRUE_WORDS + FALSE_WORDS:
        raise ApiError(400, "INVALID", "dry_run must be true or false")
    name = parse_repository(f"{org}/{registry}/{repository}")
    if is_reserved_path(name.path):
        raise ApiError(403, "DENIED", f"{name.full} is managed by its package API")
    repo = repositories.require(name)
    if flag in TRUE_WORDS:
        removals = deletion.plan(repo, digest)
    else:
        removals = deletion.delete_manifest(repo, digest)
    return jsonify(
        {
            "repository": name.full,
            "dry_run": flag in TRUE_WORDS,
            "removed": [r.as_json() for r in removals],
        }
    )


# ---- tag immutability --------------------------------------------------------------------------


def rule_json(rule: TagRule) -> dict:
    return {"id": rule.id, "pattern": rule.pattern, "created_at": iso(rule.created_at)}


@route("GET", "/orgs/<org>/registries/<registry>/immutable-tags", ORG_READ, "org")
def list_tag_rules(org: str, registry: str):
    """Tag immutability rules of a registry."""
    reg = registry_row(org, registry)
    rules = db.session.execute(
        select(TagRule).where(TagRule.registry_id == reg.id).order_by(TagRule.id)
    ).scalars()
    return jsonify([rule_json(r) for r in rules])


@route(
    "POST",
    "/orgs/<org>/registries/<registry>/immutable-tags",
    ORG_ADMIN,
    "org",
    {"pattern": ("string", True)},
)
def create_tag_rule(org: str, registry: str):
    """Protect the registry's tags matching a pattern (`v*`, `release-*`, `*`)."""
    reg = registry_row(org, registry)
    pattern = immutability.check_pattern(field_of(json_body(), "pattern", str, required=True))
    exists = db.session.execute(
        select(TagRule).where(TagRule.registry_id == reg.id, TagRule.pattern == pattern)
    ).scalar_one_or_none()
    if exists is not None:
        raise ApiError(409, "CONFLICT", f"rule {pattern!r} exists")
    rule = TagRule(registry_id=reg.id, pattern=pattern)
    db.session.add(rule)
    db.session.flush()
    return created(rule_json(rule))


@route("DELETE", "/orgs/<org>/registries/<registry>/immutable-tags/<int:rule_id>", ORG_ADMIN, "org")
def delete_tag_rule(org: str, registry: str, rule_id: int):
    """Remove a tag immutability rule."""
    reg = registry_row(org, registry)
    rule = db.session.get(TagRule, rule_id)
    if rule is None or rule.registry_id != reg.id:
        raise ApiError(404, "NOT_FOUND", f"rule {rule_id} not found")
    db.session.delete(rule)
    db.session.flush()
    return "", 204
