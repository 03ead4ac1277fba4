"""Graph-aware deletion: a manifest goes with its referrers (signatures, SBOMs, attestations)
and, for an index, with the children nothing else in the repository uses."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select

from app import digests
from app.access import audit
from app.models import Manifest, ManifestReference, Repository, Tag, db
from app.registry import blobs, gc, immutability, manifest_store, manifests, quotas
from app.registry.errors import RegistryError


@dataclass(frozen=True)
class Removal:
    digest: str
    media_type: str
    artifact_type: str | None
    reason: str  # "requested", "referrer of <digest>", "child of <digest>"
    tags: tuple[str, ...]

    def as_json(self) -> dict:
        return {
            "digest": self.digest,
            "media_type": self.media_type,
            "artifact_type": self.artifact_type,
            "reason": self.reason,
            "tags": list(self.tags),
        }


def _tags(manifest: Manifest) -> tuple[str, ...]:
    return tuple(
        sorted(db.session.execute(select(Tag.name).where(Tag.manifest_id == manifest.id)).scalars())
    )


def _children(repo: Repository, index: Manifest) -> list[Manifest]:
    if index.media_type not in manifests.INDEX_TYPES:
        return []
    named = [d for d in manifest_store.references_of(index) if d != index.subject_digest]
    if not named:
        return []
    return list(
        db.session.execute(
            select(Manifest)
            .where(Manifest.repository_id == repo.id, Manifest.digest.in_(named))
            .order_by(Manifest.id)
        ).scalars()
    )


def _used_elsewhere(repo: Repository, child: Manifest, doomed: set[int]) -> bool:
    """A tag, or a manifest of this repository that stays, names the child (its own referrers
    aside: they go with it)."""
    if _tags(child):
        return True
    users = db.session.execute(
        select(Manifest.id)
        .join(ManifestReference, ManifestReference.manifest_id == Manifest.id)
        .where(
            Manifest.repository_id == repo.id,
            ManifestReference.digest == child.digest,
            (Manifest.subject_digest.is_(None)) | (Manifest.subject_digest != child.digest),
        )
    ).scalars()
    return any(user not in doomed for user in users)


def plan(repo: Repository, digest: str) -> list[Removal]:
    """Everything deleting this manifest (by digest) removes, the requested one first."""
    if not digests.is_digest(digest):
        raise RegistryError("DIGEST_INVALID", "a manifest is deleted by digest, not by tag")
    blobs.check_digest(digest)
    root = manifest_store.find(repo, digest)
    doomed: dict[int, tuple[Manifest, str]] = {root.id: (root, "requested")}
    queue = [root]
    while queue:
        current = queue.pop(0)
        for referrer in manifest_store.referrer_manifests(repo, current.digest):
            if referrer.id not in doomed:
                doomed[referrer.id] = (referrer, f"referrer of {current.digest}")
                queue.append(referrer)
        for child in _children(repo, current):
            if child.id not in doomed and not _used_elsewhere(repo, child, set(doomed)):
                doomed[child.id] = (child, f"child of {current.digest}")
                queue.append(child)
    return [
        Removal(m.digest, m.media_type, m.artifact_type, reason, _tags(m))
        for m, reason in doomed.values()
    ]


def delete_manifest(repo: Repository, digest: str) -> list[Removal]:
    """Delete the manifest and what `plan` lists with it; their content becomes candidates
    for the garbage collector."""
    removals = plan(repo, digest)
    for removal in removals:
        immutability.guard_delete(repo, removal.tags)
    rows = list(
        db.session.execute(
            select(Manifest).where(
                Manifest.repository_id == repo.id,
                Manifest.digest.in_([r.digest for r in removals]),
            )
        ).scalars()
    )
    noted: set[str] = set()
    for manifest in rows:
        noted.add(manifest.digest)
        noted.update(manifest_store.references_of(manifest))
    gc.note(noted)
    ids = [m.id for m in rows]
    gone = [m.digest for m in rows]
    db.session.execute(delete(Tag).where(Tag.manifest_id.in_(ids)))
    db.session.execute(delete(Manifest).where(Manifest.id.in_(ids)))
    for digest in gone:
        quotas.release([repo.registry_id], digest)
    db.session.flush()
    for removal in removals:
        details = {"tags": list(removal.tags), "reason": removal.reason}
        if removal.artifact_type:
            details["artifact_type"] = removal.artifact_type
        audit.on_repository("manifest.delete", repo, removal.digest, details)
    return removals
