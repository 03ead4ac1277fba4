"""A registry's "block at severity >= X" policy and its allow-list of accepted advisories.

A finding blocks when its score (the CVSS base score, else the lowest score of its severity
label's band) is at least the policy's threshold; a finding whose severity is unknown blocks
only when the policy says `unknown: block`. An advisory on the allow-list blocks nothing until
its entry expires.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from app.access.decisions import StampedMemo
from app.errors import Invalid
from app.models import Registry, VulnAllowance, VulnPolicy, db
from app.models.base import utcnow

LABELS = {"low": 0.1, "medium": 4.0, "moderate": 4.0, "high": 7.0, "critical": 9.0}
UNKNOWN = ("allow", "block")
MAX_NAMED = 5  # advisories a refusal names; the rest are counted


def parse_threshold(value) -> float | None:
    """A number from 0.0 to 10.0, a label (low, medium, high, critical), or None (off)."""
    if value is None:
        return None
    if isinstance(value, str) and value.strip().lower() in LABELS:
        return LABELS[value.strip().lower()]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Invalid("block_at must be a score from 0 to 10, a severity label, or null")
    if not 0.0 <= float(value) <= 10.0:
        raise Invalid("block_at must be between 0 and 10")
    return float(value)


def policy_of(registry_id: int) -> VulnPolicy | None:
    return db.session.get(VulnPolicy, registry_id)


def active(policy: VulnPolicy | None) -> bool:
    return policy is not None and (policy.block_at is not None or policy.unknown == "block")


# registry id -> whether a policy blocks anything, kept while the policy stamp is unchanged (its
# triggers watch vuln_policies): every pull and download asks, few registries have one.
_ACTIVE: StampedMemo[bool] = StampedMemo(4096)


def in_force(registry_id: int) -> bool:
    return _ACTIVE.get(registry_id, lambda: active(policy_of(registry_id)))


def allowed_ids(registry_id: int, now: datetime | None = None) -> set[str]:
    now = now or utcnow()
    return set(
        db.session.execute(
            select(VulnAllowance.advisory_id).where(
                VulnAllowance.registry_id == registry_id, VulnAllowance.expires_at > now
            )
        ).scalars()
    )


def blocking(policy: VulnPolicy, findings: list[dict], allowed: set[str]) -> list[dict]:
    out: dict[str, dict] = {}
    for f in findings:
        if f["id"] in allowed or any(a in allowed for a in f.get("aliases") or []):
            continue
        score = f.get("score")
        if score is None:
            hit = policy.unknown == "block"
        else:
            hit = policy.block_at is not None and score >= policy.block_at
        if hit:
            out.setdefault(f["id"], f)
    return sorted(out.values(), key=lambda f: (-(f.get("score") or 0), f["id"]))


def refusal(policy: VulnPolicy, blocked: list[dict]) -> str:
    """One line naming the advisories: clients show it as it is."""
    named = []
    for f in blocked[:MAX_NAMED]:
        pkg = f.get("package") or {}
        score = "unknown severity" if f.get("score") is None else f"{f['severity']} {f['score']}"
        named.append(f"{f['id']} ({score}, {pkg.get('name')} {pkg.get('version')})")
    more = f" and {len(blocked) - MAX_NAMED} more" if len(blocked) > MAX_NAMED else ""
    threshold = "off" if policy.block_at is None else f"{policy.block_at:g}"
    return (
        f"blocked by the registry's vulnerability policy (block at severity >= {threshold}"
        f"{', unknown severity blocks' if policy.unknown == 'block' else ''}): "
        + "; ".join(named)
        + more
    )


def check(registry: Registry | int, findings_of) -> str | None:
    """The refusal message when the policy blocks, else None. `findings_of()` is called only
    when a policy is in force, so a registry without one pays one primary-key lookup."""
    registry_id = registry if isinstance(registry, int) else registry.id
    if not in_force(registry_id):
        return None
    policy = policy_of(registry_id)
    if not active(policy):
        return None
    blocked = blocking(policy, findings_of(), allowed_ids(registry_id))
    return refusal(policy, blocked) if blocked else None
