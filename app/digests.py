"""Digests as the OCI image spec defines them: `algorithm:encoded`, sha256 and sha512.

A leaf module: the registry core and the storage backends both parse digests with it.
"""

from __future__ import annotations

import hashlib
import re

from app.errors import Invalid

ALGORITHMS = {"sha256": 64, "sha512": 128}
_DIGEST = re.compile(r"^(?P<alg>[a-z0-9]+(?:[+._-][a-z0-9]+)*):(?P<hex>[a-zA-Z0-9=_-]+)$")

CHUNK = 1024 * 1024


class InvalidDigest(Invalid):
    pass


def parse(digest: str) -> tuple[str, str]:
    """Return (algorithm, hex) or raise InvalidDigest for anything we cannot verify."""
    m = _DIGEST.match(digest or "")
    if not m:
        raise InvalidDigest(f"malformed digest {digest!r}")
    alg, hexpart = m["alg"], m["hex"]
    if alg not in ALGORITHMS:
        raise InvalidDigest(f"unsupported digest algorithm {alg!r}")
    if len(hexpart) != ALGORITHMS[alg] or not re.fullmatch(r"[a-f0-9]+", hexpart):
        raise InvalidDigest(f"digest {digest!r} is not {ALGORITHMS[alg]} lowercase hex characters")
    return alg, hexpart


def is_digest(reference: str) -> bool:
    return ":" in reference


def hasher(algorithm: str = "sha256"):
    return hashlib.new(algorithm)


def of_bytes(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"
