"""What the artifact and Python project pages show of vulnerabilities: the report, what the
registry's policy makes of it, and the database's age."""

from __future__ import annotations

from flask import current_app

from app.models import Manifest, PythonFile, Repository
from app.registry.vulnerabilities import policy, reports, status


def _view(registry_id: int, report: dict) -> dict:
    found = policy.policy_of(registry_id)
    blocked: list[dict] = []
    if policy.active(found):
        blocked = policy.blocking(found, report["findings"], policy.allowed_ids(registry_id))
    database = status.database_status()
    age = status.age_text(database["age_seconds"]) if database["loaded"] else None
    return {
        "report": report,
        "blocked": {f["id"] for f in blocked},
        "policy": found if policy.active(found) else None,
        "database": database,
        "age": age,
    }


def for_manifest(repo: Repository, manifest: Manifest) -> dict | None:
    """None for referrers (signatures, SBOMs): they are never judged themselves."""
    if manifest.subject_digest is not None:
        return None
    store = current_app.extensions["cargohold.store"]
    return _view(repo.registry_id, reports.manifest_report(store, repo, manifest))


def for_files(registry_id: int, files: list[PythonFile]) -> dict:
    findings = []
    for f in files:
        for finding in reports.python_file_report(f)["findings"]:
            findings.append({**finding, "file": f.filename})
    return _view(registry_id, {"findings": findings, "summary": reports.summarise(findings)})
