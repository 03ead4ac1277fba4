"""The identity of a CI workload that logged in with an OIDC ID token: what an upload records
about who made it, and what its PEP 740 attestations must have been signed by.

Only a fixed set of claims is kept (the ones GitHub Actions and GitLab CI use to name the
repository, workflow, ref and run), each cut to a bounded length: the token is the issuer's, so
its claims are trusted, but they are shown on pages and stored with every file.
"""

from __future__ import annotations

ISSUER = "issuer"
SUBJECT = "subject"
# GitHub Actions: repository, workflow_ref / job_workflow_ref, environment, ref, sha, run_id.
# GitLab CI: project_path, ci_config_ref_uri, environment, ref, sha, pipeline_id.
KEPT_CLAIMS = (
    "repository",
    "repository_owner",
    "workflow_ref",
    "job_workflow_ref",
    "environment",
    "ref",
    "sha",
    "run_id",
    "run_attempt",
    "project_path",
    "namespace_path",
    "ci_config_ref_uri",
    "pipeline_id",
    "job_id",
)
MAX_VALUE = 512


def _text(value) -> str:
    return str(value)[:MAX_VALUE]


def identity(claims: dict) -> dict[str, str]:
    """issuer, subject and the kept claims present in a verified ID token."""
    found = {
        ISSUER: _text(claims.get("iss", "")).rstrip("/"),
        SUBJECT: _text(claims.get("sub", "")),
    }
    for name in KEPT_CLAIMS:
        value = claims.get(name)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
            found[name] = _text(value)
    return found
