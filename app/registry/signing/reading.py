"""Bounded reads of what a signature consists of: its manifest and its layers, each refused
before it is read when its declared size is over the limit for its kind, and checked against
its digest once read."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field

from app import digests, limits
from app.models import Manifest
from app.storage import BlobStore

MAX_SIGNATURE_MANIFEST = 1024 * 1024
MAX_PAYLOAD = 64 * 1024  # a simple-signing payload is a few hundred bytes
MAX_ENVELOPE = 256 * 1024  # a bundle or JWS envelope, certificate chain included
MAX_LAYERS = 64  # signatures in one cosign signature manifest
MAX_SIGNATURES = 50  # signature referrers considered per manifest


class Unreadable(Exception):
    """Why a signature could not be read (meant for the verification report)."""


@dataclass
class Finding:
    """One signature and what came of checking it."""

    format: str  # "cosign", "sigstore-bundle", "notation"
    manifest: str  # the signature manifest's digest
    valid: bool = False
    key: str | None = None  # the registered key or certificate it verified with
    detail: str = ""
    extra: dict = field(default_factory=dict)

    def as_json(self) -> dict:
        out = {
            "format": self.format,
            "manifest": self.manifest,
            "valid": self.valid,
            "key": self.key,
            "detail": self.detail,
        }
        out.update(self.extra)
        return out


def read(store: BlobStore, digest: str, size, limit: int) -> bytes:
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise Unreadable(f"{digest}: no valid size")
    if size > limit:
        raise Unreadable(f"{digest} is {size} bytes; at most {limit} are read")
    try:
        with store.open(digest) as f:
            body = f.read(limit + 1)
    except OSError:
        raise Unreadable(f"{digest} is not in storage") from None
    if len(body) != size:
        raise Unreadable(f"{digest} is {len(body)} bytes, its descriptor says {size}")
    algorithm, _ = digests.parse(digest)
    if digests.of_bytes(body, algorithm) != digest:
        raise Unreadable(f"{digest} does not match its content")
    return body


def json_object(body: bytes, what: str) -> dict:
    try:
        doc = limits.loads(body)
    except limits.InputRejected as exc:
        raise Unreadable(f"{what} is not usable JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise Unreadable(f"{what} is not a JSON object")
    return doc


def manifest_doc(store: BlobStore, manifest: Manifest) -> dict:
    body = read(store, manifest.digest, manifest.size, MAX_SIGNATURE_MANIFEST)
    return json_object(body, f"manifest {manifest.digest}")


def layers(doc: dict) -> list[dict]:
    items = doc.get("layers")
    if not isinstance(items, list):
        return []
    return [x for x in items[:MAX_LAYERS] if isinstance(x, dict)]


def b64(value, what: str, *, urlsafe: bool = False, limit: int = MAX_ENVELOPE) -> bytes:
    if not isinstance(value, str) or len(value) > limit * 2:
        raise Unreadable(f"{what} is not a base64 string")
    try:
        if urlsafe:
            if "=" in value:
                raise Unreadable(f"{what} must be unpadded base64url")
            return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise Unreadable(f"{what} is not valid base64") from None
