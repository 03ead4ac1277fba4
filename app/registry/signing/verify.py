"""A manifest's signatures found, verified against its registry's active keys, and the result
cached per manifest: reused while the registry's key version and the set of signatures found are
unchanged, recomputed otherwise (a key added or retired, a signature pushed or deleted)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from sqlalchemy import select

from app.models import Manifest, Repository, SignatureCheck, Tag, db
from app.models.base import utcnow
from app.models.upsert import upsert
from app.registry import manifest_store
from app.registry.manifests import IMAGE_TYPES
from app.registry.signing import bundle, cosign, keys, notary
from app.registry.signing.reading import MAX_SIGNATURES, Unreadable, layers, manifest_doc
from app.storage import BlobStore

VERIFIED, INVALID, UNSIGNED, ATTACHMENT = "verified", "invalid", "unsigned", "attachment"
SIGNATURE_ARTIFACT_TYPES = (*bundle.MEDIA_TYPES, notary.ARTIFACT_TYPE)
IMAGE_CONFIGS = (
    "application/vnd.oci.image.config.v1+json",
    "application/vnd.docker.container.image.v1+json",
)
# Layers that make a manifest a signature or an attestation rather than something to run.
ATTACHED_LAYERS = frozenset(
    {
        cosign.SIMPLE_SIGNING,
        "application/vnd.dsse.envelope.v1+json",
        notary.JWS,
        notary.COSE,
        *bundle.MEDIA_TYPES,
    }
)


@dataclass
class Status:
    status: str
    signatures: list[dict] = field(default_factory=list)
    key_version: int = 0

    @property
    def verified(self) -> bool:
        return self.status == VERIFIED

    def as_json(self) -> dict:
        return {
            "status": self.status,
            "key_version": self.key_version,
            "signatures": self.signatures,
        }


def _candidates(repo: Repository, manifest: Manifest) -> list[tuple[str, Manifest]]:
    found: list[tuple[str, Manifest]] = []
    tag = cosign.signature_tag(manifest.digest)
    if tag:
        sig = db.session.execute(
            select(Manifest)
            .join(Tag, Tag.manifest_id == Manifest.id)
            .where(Tag.repository_id == repo.id, Tag.name == tag)
        ).scalar_one_or_none()
        if sig is not None:
            found.append(("cosign", sig))
    referrers = manifest_store.referrer_manifests(
        repo, manifest.digest, SIGNATURE_ARTIFACT_TYPES, MAX_SIGNATURES
    )
    for m in referrers:
        found.append(("notation" if m.artifact_type == notary.ARTIFACT_TYPE else "bundle", m))
    return found


def _evidence(candidates: list[tuple[str, Manifest]]) -> str:
    text = "\n".join(sorted(f"{kind} {m.digest}" for kind, m in candidates))
    return hashlib.sha256(text.encode()).hexdigest()


def is_attachment(store: BlobStore, manifest: Manifest) -> bool:
    """Signatures, attestations and SBOMs: what is attached to an artifact, not run. Their
    readers (cosign, notation, policy engines) must reach them under a signature policy. Judged
    from what clients act on, the config's media type and the layers, never from artifactType
    alone (a runnable image may declare any artifactType)."""
    if manifest.media_type not in IMAGE_TYPES:
        return False
    try:
        doc = manifest_doc(store, manifest)
    except Unreadable:
        return False
    config = doc.get("config") if isinstance(doc.get("config"), dict) else {}
    if manifest.subject_digest and config.get("mediaType") not in IMAGE_CONFIGS:
        return True
    found = layers(doc)
    return bool(found) and all(x.get("mediaType") in ATTACHED_LAYERS for x in found)


def _compute(store: BlobStore, repo: Repository, manifest: Manifest, candidates) -> Status:
    if is_attachment(store, manifest):
        return Status(ATTACHMENT)
    trusted = keys.trusted(repo.registry_id)
    findings = []
    for kind, sig in candidates:
        if kind == "cosign":
            findings += cosign.check(store, sig, manifest.digest, trusted)
        elif kind == "notation":
            findings += notary.check(store, sig, manifest, trusted)
        else:
            findings += bundle.check(store, sig, manifest, trusted)
    if not findings:
        return Status(UNSIGNED)
    status = VERIFIED if any(f.valid for f in findings) else INVALID
    return Status(status, [f.as_json() for f in findings])


def status_of(store: BlobStore, repo: Repository, manifest: Manifest) -> Status:
    """The manifest's signature status, from the cache when it still holds."""
    version = keys.key_version(repo.registry_id)
    candidates = _candidates(repo, manifest)
    evidence = _evidence(candidates)
    cached = db.session.get(SignatureCheck, manifest.id)
    if cached is not None and cached.key_version == version and cached.evidence == evidence:
        return Status(cached.status, list(cached.signatures or []), version)
    result = _compute(store, repo, manifest, candidates)
    result.key_version = version
    upsert(
        SignatureCheck,
        ["manifest_id"],
        ["key_version", "evidence", "status", "signatures", "checked_at"],
        manifest_id=manifest.id,
        key_version=version,
        evidence=evidence,
        status=result.status,
        signatures=result.signatures,
        checked_at=utcnow(),
    )
    if cached is not None:
        db.session.expire(cached)
    return result
