"""A file's PEP 740 attestations and provenance object, stored as an OCI referrer of the file's
manifest, so they travel with it (`oras discover`, the referrers API) and go when it goes.

The referrer is an image manifest in the project's repository:

- artifactType `application/vnd.pypi.integrity.v1+json` (the Integrity API's media type);
- config: the OCI empty descriptor;
- layers: the provenance object first (what the Integrity API serves, byte for byte), then each
  attestation as uploaded (`application/vnd.pypi.attestation.v1+json`);
- subject: the file's manifest.

Every blob enters the store through the upload session OCI pushes use (`uploads.ingest`).
"""

from __future__ import annotations

import json

from app import digests
from app.access import Principal
from app.models import Repository
from app.pypi.attestations import Verified, describe
from app.registry import blobs, manifest_store, uploads
from app.registry.manifests import OCI_MANIFEST
from app.storage import BlobStore

INTEGRITY_MEDIA_TYPE = "application/vnd.pypi.integrity.v1+json"
ATTESTATION_MEDIA_TYPE = "application/vnd.pypi.attestation.v1+json"
EMPTY_MEDIA_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY = b"{}"
TITLE = "org.opencontainers.image.title"
PREDICATE_TYPE = "org.python.attestation.predicate-type"
PUBLISHER = "org.python.provenance.publisher"
# The stored provenance is at most the bounded attestations field plus a publisher.
MAX_PROVENANCE = 1024 * 1024


def _json(doc) -> bytes:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False, sort_keys=True).encode()


def _put(store: BlobStore, repo: Repository, principal: Principal, data: bytes) -> str:
    digest = digests.of_bytes(data)
    # The row before the object: content the collector is deleting is refused untouched.
    blobs.record(digest, len(data))
    if store.stat(digest) is not None:
        blobs.link(repo, digest)
    else:
        uploads.ingest(store, repo, principal, [data], digest)
    return digest


def _layer(media_type: str, digest: str, data: bytes, notes: dict[str, str]) -> dict:
    return {"mediaType": media_type, "digest": digest, "size": len(data), "annotations": notes}


def store_referrer(
    store: BlobStore,
    repo: Repository,
    principal: Principal,
    subject: tuple[str, int],
    filename: str,
    verified: Verified,
) -> str:
    """Store the attestations and provenance as a referrer of `subject` (the file manifest's
    digest and size); returns the provenance object's sha256."""
    provenance = _json(verified.provenance())
    layers = [
        _layer(
            INTEGRITY_MEDIA_TYPE,
            _put(store, repo, principal, provenance),
            provenance,
            {TITLE: f"{filename}.provenance"},
        )
    ]
    for item, predicate_type in zip(verified.attestations, verified.predicate_types, strict=True):
        data = _json(item)
        digest = _put(store, repo, principal, data)
        kind = predicate_type.rstrip("/").split("/")[-2]  # ".../publish/v1" -> "publish"
        notes = {TITLE: f"{filename}.{kind}.attestation", PREDICATE_TYPE: predicate_type}
        layers.append(_layer(ATTESTATION_MEDIA_TYPE, digest, data, notes))
    empty = _put(store, repo, principal, EMPTY)
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": INTEGRITY_MEDIA_TYPE,
        "config": {"mediaType": EMPTY_MEDIA_TYPE, "digest": empty, "size": len(EMPTY)},
        "layers": layers,
        "subject": {"mediaType": OCI_MANIFEST, "digest": subject[0], "size": subject[1]},
        "annotations": {
            TITLE: f"{filename}.provenance",
            PUBLISHER: describe(verified.publisher),
        },
    }
    body = _json(doc)
    manifest_store.put(store, repo, digests.of_bytes(body), body, OCI_MANIFEST)
    return layers[0]["digest"].split(":", 1)[1]


def read(store: BlobStore, sha256: str) -> bytes | None:
    """The stored provenance object, or None when its blob is gone."""
    digest = f"sha256:{sha256}"
    size = store.stat(digest)
    if size is None or size > MAX_PROVENANCE:
        return None
    with store.open(digest) as f:
        return f.read(MAX_PROVENANCE + 1)
