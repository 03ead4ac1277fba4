"""What may be pulled: the one hook the manifest GET/HEAD path calls after finding a manifest.
Each policy lives in its own module and raises a DENIED RegistryError when it refuses."""

from __future__ import annotations

from collections.abc import Callable

from app.registry.manifest_store import Located
from app.registry.signing import policy as signature_policy
from app.registry.vulnerabilities import pulls as vulnerability_pulls
from app.storage import BlobStore


def _no() -> bool:
    return False


def check_manifest_pull(
    store: BlobStore, found: Located, may_push: Callable[[], bool] = _no
) -> None:
    """`may_push`: whether the caller may push to the registry (asked only when a policy
    needs it; the signature policy exempts writers, who fetch what they are about to sign).
    Without a policy in force (most registries) no row is loaded."""
    if not (
        signature_policy.required(found.registry_id)
        or vulnerability_pulls.judges(found.registry_id, found.subject_digest)
    ):
        return
    repo, manifest = found.entities()
    signature_policy.check(store, repo, manifest, may_push)
    vulnerability_pulls.check_manifest(store, repo, manifest)
