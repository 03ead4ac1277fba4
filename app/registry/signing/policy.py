"""The policy "pull requires a valid signature by one of these keys", per registry.

What it gates: every GET or HEAD of a manifest, by tag or by digest. An index's child is
admitted when it is validly signed itself or when an index in the same repository that lists it
is (clients pull a signed multi-platform tag by fetching the index, then the child by digest).
What it lets through: signatures, attestations and SBOMs attached to artifacts (their readers
need them to verify), listing referrers and tags, blobs (content-addressed: reaching one takes
a manifest that listed it, and signatures' own payloads are blobs), and, unless the policy says
otherwise, callers who may push to the registry, who fetch a manifest to sign it.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select

from app.access.decisions import StampedMemo
from app.models import Manifest, ManifestReference, Registry, Repository, db
from app.registry.errors import RegistryError
from app.registry.manifests import INDEX_TYPES
from app.registry.signing import keys, verify
from app.storage import BlobStore

POLICY = "pull requires a valid signature"
MAX_PARENTS = 20
MAX_DEPTH = 2

# registry id -> (pull requires a signature, writers exempt), kept while the policy stamp is
# unchanged (its triggers watch signing_policies): every pull asks, few registries have one.
_IN_FORCE: StampedMemo[tuple[bool, bool]] = StampedMemo(4096)


def _in_force(registry_id: int) -> tuple[bool, bool]:
    def read() -> tuple[bool, bool]:
        policy = keys.find_policy(registry_id)
        if policy is None:
            return False, True
        return bool(policy.require_signature), bool(policy.exempt_writers)

    return _IN_FORCE.get(registry_id, read)


def required(registry_id: int) -> bool:
    """Whether the registry's pulls need a valid signature (for some callers, at least)."""
    return _in_force(registry_id)[0]


def _parents(repo: Repository, manifest: Manifest) -> list[Manifest]:
    return list(
        db.session.execute(
            select(Manifest)
            .join(ManifestReference, ManifestReference.manifest_id == Manifest.id)
            .where(
                ManifestReference.digest == manifest.digest,
                Manifest.repository_id == repo.id,
                Manifest.media_type.in_(INDEX_TYPES),
            )
            .order_by(Manifest.id)
            .limit(MAX_PARENTS)
        ).scalars()
    )


def _admitted(store: BlobStore, repo: Repository, manifest: Manifest, depth: int = 0):
    status = verify.status_of(store, repo, manifest)
    if status.status in (verify.VERIFIED, verify.ATTACHMENT):
        return True, status
    if depth < MAX_DEPTH:
        for parent in _parents(repo, manifest):
            if parent.subject_digest == manifest.digest:
                continue
            if _admitted(store, repo, parent, depth + 1)[0]:
                return True, status
    return False, status


def check(
    store: BlobStore, repo: Repository, manifest: Manifest, may_push: Callable[[], bool]
) -> None:
    """Return when the registry's signature policy admits this pull; DENIED otherwise."""
    required, writers_exempt = _in_force(repo.registry_id)
    if not required:
        return
    if writers_exempt and may_push():
        return
    ok, status = _admitted(store, repo, manifest)
    if ok:
        return
    registry = db.session.get(Registry, repo.registry_id)
    where = f"{registry.organisation.name}/{registry.name}" if registry else "this registry"
    why = {
        verify.UNSIGNED: "it has no signature",
        verify.INVALID: "none of its signatures verifies with the registry's active keys",
    }.get(status.status, status.status)
    text = f"policy '{POLICY}' of registry {where} refuses {manifest.digest}: {why}"
    raise RegistryError("DENIED", text, message=text)
