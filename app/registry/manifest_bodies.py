"""Manifest bodies kept per process by digest. Content addressed by digest never changes, so a
kept body needs no invalidation: a manifest GET still finds its row first (a deleted manifest
is unknown whatever is kept here), and only then reads the bytes, from here or the store (on S3
a round trip per pull otherwise). Bounded: at most ENTRIES bodies of at most MAX_BYTES each."""

from __future__ import annotations

from app.caching import BoundedCache
from app.storage import BlobStore

ENTRIES = 256
MAX_BYTES = 16 * 1024  # most image manifests are 0.5-4 KiB; larger ones are read each time

_KEPT: BoundedCache[str, bytes] = BoundedCache(ENTRIES)


def read(store: BlobStore, digest: str) -> bytes:
    body = _KEPT.get(digest)
    if body is None:
        with store.open(digest) as f:
            body = f.read()
        if len(body) <= MAX_BYTES:
            _KEPT.put(digest, body)
    return body
