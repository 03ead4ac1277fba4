"""What may be pulled: the one hook the manifest GET/HEAD path calls after finding a manifest.
Each policy lives in its own module and raises a DENIED RegistryError when it refuses."""

from __future__ import annotations

from app.models import Manifest, Repository
from app.registry.vulnerabilities import pulls as vulnerability_pulls
from app.storage import BlobStore


def check_manifest_pull(store: BlobStore, repo: Repository, manifest: Manifest) -> None:
    vulnerability_pulls.check_manifest(store, repo, manifest)
