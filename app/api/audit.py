"""/api/v1 audit log: an organisation's events for its admins, every event for site admins,
and each registry's switch for auditing pulls and downloads."""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import urlencode

from flask import Response, jsonify, request, stream_with_context

from app.access import ORG_ADMIN, SITE_ADMIN, audit, audit_log
from app.access.policy import find_registry
from app.api.framework import ApiError, field_of, json_body, route

NDJSON = "application/x-ndjson"


def _wants_lines() -> bool:
    fmt = request.args.get("format", "")
    if fmt not in ("", "json", "jsonl"):
        raise ApiError(400, "INVALID", "format must be json or jsonl")
    if fmt:
        return fmt == "jsonl"
    # JSON first: a client that accepts anything (*/*) gets a page, not the export.
    return request.accept_mimetypes.best_match(["application/json", NDJSON]) == NDJSON


def _lines(filters: audit_log.Filters) -> Iterator[str]:
    for event in audit_log.export(filters):
        yield json.dumps(audit_log.as_json(event), separators=(",", ":")) + "\n"


def _answer(filters: audit_log.Filters):
    if _wants_lines():
        resp = Response(stream_with_context(_lines(filters)), mimetype=NDJSON)
        resp.headers["Content-Disposition"] = 'attachment; filename="audit.jsonl"'
        resp.headers["Cache-Control"] = "no-store"
        return resp
    limit = audit_log.page_size(request.args.get("limit"))
    events, next_before = audit_log.page(
        filters, limit, audit_log.cursor(request.args.get("before"))
    )
    body: dict = {"events": [audit_log.as_json(e) for e in events], "next_before": next_before}
    if next_before is not None:
        # The caller's own arguments, as sent: url_for would read some (org, _external,
        # _method...) as its own parameters.
        query = [(k, v) for k, v in request.args.items(multi=True) if k != "before"]
        query.append(("before", str(next_before)))
        body["next"] = f"{request.script_root}{request.path}?{urlencode(query)}"
    resp = jsonify(body)
    resp.headers["Cache-Control"] = "no-store"
    return resp


@route("GET", "/orgs/<org>/audit", ORG_ADMIN, "org")
def org_audit(org: str):
    """The organisation's audit log, newest first (filters: action, actor, registry,
    repository, result, since, until; keyset pages with limit and before; ?format=jsonl
    exports every match as JSON lines)."""
    filters = audit_log.filters_from(request.args, org=org)
    return _answer(filters)


@route("GET", "/admin/audit", SITE_ADMIN, "site")
def site_audit():
    """Every audit event, of every organisation and of none (logins, personal tokens, garbage
    collection); org=<name> narrows to one organisation, org=- to events of none."""
    filters = audit_log.filters_from(request.args, allow_org=True)
    return _answer(filters)


def _registry(org: str, registry: str):
    found = find_registry(org, registry)
    if found is None:
        raise ApiError(404, "NOT_FOUND", f"registry {org}/{registry} not found")
    return found


def _settings_json(org: str, reg) -> dict:
    return {"organisation": org, "registry": reg.name, "audit_pulls": bool(reg.audit_pulls)}


@route("GET", "/orgs/<org>/registries/<registry>/audit-settings", ORG_ADMIN, "org")
def get_audit_settings(org: str, registry: str):
    """Whether the registry's pulls and downloads are audited (writes always are)."""
    return jsonify(_settings_json(org, _registry(org, registry)))


@route(
    "PUT",
    "/orgs/<org>/registries/<registry>/audit-settings",
    ORG_ADMIN,
    "org",
    {"audit_pulls": ("boolean", True)},
)
def put_audit_settings(org: str, registry: str):
    """Audit the registry's pulls and downloads too, or stop."""
    on = field_of(json_body(), "audit_pulls", bool, required=True)
    reg = audit.set_pull_audit(_registry(org, registry), org, on)
    return jsonify(_settings_json(org, reg))
