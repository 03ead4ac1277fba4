"""An organisation's audit log for its admins: filters, pages by event id, and each registry's
switch for auditing pulls and downloads."""

from __future__ import annotations

from flask import redirect, render_template, request, url_for

from app.access import ORG_ADMIN, audit, audit_log
from app.access.policy import find_registry
from app.console.blueprint import bp, form_of
from app.console.templating import notice
from app.errors import Invalid, NotFound
from app.gate import requires

FILTERS = ("action", "actor", "registry", "repository", "result", "since", "until")
PER_PAGE = 50


@bp.route("/orgs/<org>/audit", endpoint="audit")
@requires(ORG_ADMIN, "org")
def audit_page(org: str):
    wanted = {k: request.args.get(k, "").strip() for k in FILTERS}
    events, next_before, error = [], None, None
    try:
        filters = audit_log.filters_from(wanted, org=org)
        before = audit_log.cursor(request.args.get("before"))
        events, next_before = audit_log.page(filters, PER_PAGE, before)
    except Invalid as exc:
        error = exc.message
    query = {k: v for k, v in wanted.items() if v}
    return render_template(
        "console/audit.html",
        org=org,
        wanted=wanted,
        events=events,
        error=error,
        results=audit_log.RESULTS,
        next_url=url_for("console.audit", org=org, **query, before=next_before)
        if next_before
        else None,
        first_url=url_for("console.audit", org=org, **query)
        if request.args.get("before")
        else None,
        export_url=url_for("api.org_audit", org=org, **query, format="jsonl"),
    ), (400 if error else 200)


@bp.route("/orgs/<org>/<registry>/audit-pulls", methods=["POST"])
@requires(ORG_ADMIN, "org")
@form_of("console.organisation")
def set_pull_audit(org: str, registry: str):
    choice = request.form.get("audit_pulls", "")
    if choice not in ("true", "false"):
        raise Invalid("Choose whether pulls are audited.")
    found = find_registry(org, registry)
    if found is None:
        raise NotFound(f"no registry {registry!r} in {org}")
    audit.set_pull_audit(found, org, choice == "true")
    state = "now audited" if choice == "true" else "no longer audited"
    notice(f"Pulls and downloads of {org}/{registry} are {state}.")
    return redirect(url_for("console.organisation", org=org))
