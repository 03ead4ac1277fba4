"""The one pull-time hook: every registry policy that may refuse a manifest pull (GET or HEAD,
by tag or digest) is asked here, in turn. The OCI blueprint calls `admit` once it has found the
manifest and before it answers; each policy lives in its own module."""

from __future__ import annotations

from collections.abc import Callable

from app.models import Manifest, Repository
from app.registry.signing import policy as signature_policy
from app.storage import BlobStore


def admit(
    store: BlobStore, repo: Repository, manifest: Manifest, may_push: Callable[[], bool]
) -> None:
    """Return when every policy admits the pull; raise RegistryError DENIED otherwise.
    `may_push` says whether the caller may push to the registry (asked only when needed)."""
    signature_policy.check(store, repo, manifest, may_push)
