"""The registry page's retention panel, for organisation admins: the policies and, on request,
the dry-run report of what they would remove now."""

from __future__ import annotations

from itertools import islice

from app.access import ORG_ADMIN
from app.gate import permits
from app.models import Registry
from app.registry import retention

# The console shows the first entries of a report; the management API pages further.
REPORT_ROWS = 200


def panel(org: str, reg: Registry, want_report: bool) -> dict | None:
    """None for callers who do not administer the organisation."""
    if not permits(ORG_ADMIN, "org", org=org):
        return None
    policies = retention.policies_of(reg.id)
    report = None
    if want_report:
        prefix = f"{org}/{reg.name}/"
        report = []
        for policy in policies:
            if policy.enabled and len(report) <= REPORT_ROWS:
                removals = retention.apply(policy, prefix, dry_run=True)
                report.extend(islice(removals, REPORT_ROWS + 1 - len(report)))
    return {
        "policies": policies,
        "report": None if report is None else report[:REPORT_ROWS],
        "truncated": report is not None and len(report) > REPORT_ROWS,
        "limit": REPORT_ROWS,
    }
