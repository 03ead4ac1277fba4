"""Digests live in the leaf module `app.digests`, which storage uses too; re-exported here."""

from app.digests import ALGORITHMS, CHUNK, InvalidDigest, hasher, is_digest, of_bytes, parse

__all__ = ["ALGORITHMS", "CHUNK", "InvalidDigest", "hasher", "is_digest", "of_bytes", "parse"]
