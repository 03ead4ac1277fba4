"""The vulnerability policy at pull time: manifests (by tag or digest) and Python files."""

from __future__ import annotations

from app.models import Manifest, PythonFile, Repository, db
from app.registry.errors import RegistryError
from app.registry.vulnerabilities import policy, reports
from app.storage import BlobStore


class PolicyDenied(RegistryError):
    """DENIED with the refusal as the error's message too: podman and skopeo print the
    message of an OCI error, not its detail."""

    def body(self) -> dict:
        return {"errors": [{"code": self.code, "message": self.message, "detail": self.detail}]}


def judges(registry_id: int, subject_digest: str | None) -> bool:
    """Whether the registry's policy judges this manifest. Referrers (signatures, SBOMs,
    attestations) are never blocked: they are how the content is judged."""
    return subject_digest is None and policy.in_force(registry_id)


def check_manifest(store: BlobStore, repo: Repository, manifest: Manifest) -> None:
    """Refuse (DENIED) a manifest the registry's policy blocks."""
    if not judges(repo.registry_id, manifest.subject_digest):
        return
    message = policy.check(
        repo.registry_id, lambda: reports.manifest_report(store, repo, manifest)["findings"]
    )
    if message:
        # A commit point: the report just computed is cached for the next pull, which the
        # refusal's rollback would otherwise throw away. A pull writes nothing else.
        db.session.commit()
        raise PolicyDenied("DENIED", message)


def file_refusal(pf: PythonFile) -> str | None:
    """The refusal message for a Python file download the policy blocks, else None."""
    return policy.check(pf.registry_id, lambda: reports.file_findings(pf)["findings"])
