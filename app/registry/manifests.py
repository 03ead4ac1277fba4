"""Manifest parsing and validation, free of storage: what a manifest says and whether it is sane."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from app import digests, limits
from app.registry.errors import RegistryError

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_SCHEMA1 = (
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
)
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
IMAGE_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
MANIFEST_TYPES = IMAGE_TYPES + INDEX_TYPES

# RFC 6838 type/subtype, as the image spec requires for descriptor media types.
_MEDIA_TYPE = re.compile(
    r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$"
)


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    artifact_type: str | None = None
    annotations: dict[str, str] | None = None
    urls: tuple[str, ...] = ()

    def as_json(self) -> dict:
        out: dict = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        if self.annotations:
            out["annotations"] = self.annotations
        return out


@dataclass
class ParsedManifest:
    media_type: str
    digest: str
    size: int
    artifact_type: str | None
    subject: Descriptor | None
    annotations: dict[str, str] | None
    blobs: list[Descriptor] = field(default_factory=list)
    children: list[Descriptor] = field(default_factory=list)


def _invalid(detail: str) -> RegistryError:
    return RegistryError("MANIFEST_INVALID", detail)


def _annotations(value, where: str) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise _invalid(f"{where}.annotations must map strings to strings")
    return value


def _media_type(value, where: str) -> str:
    if not isinstance(value, str) or not _MEDIA_TYPE.match(value):
        raise _invalid(f"{where} has an invalid media type {value!r}")
    return value


def descriptor(value, where: str) -> Descriptor:
    if not isinstance(value, dict):
        raise _invalid(f"{where} must be a descriptor object")
    media_type = _media_type(value.get("mediaType"), f"{where}.mediaType")
    digest = value.get("digest")
    try:
        digests.parse(digest)
    except digests.InvalidDigest as exc:
        raise _invalid(f"{where}.digest: {exc}") from None
    size = value.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= limits.MAX_INT:
        raise _invalid(f"{where}.size must be a non-negative integer below 2^63")
    urls = value.get("urls") or []
    if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
        raise _invalid(f"{where}.urls must be a list of strings")
    artifact_type = value.get("artifactType")
    if artifact_type is not None:
        _media_type(artifact_type, f"{where}.artifactType")
    return Descriptor(
        media_type=media_type,
        digest=digest,
        size=size,
        artifact_type=artifact_type,
        annotations=_annotations(value.get("annotations"), where),
        urls=tuple(urls),
    )


def _resolve_media_type(doc: dict, content_type: str | None) -> str:
    declared = doc.get("mediaType")
    header = (content_type or "").split(";")[0].strip() or None
    if declared is not None and not isinstance(declared, str):
        raise _invalid("mediaType must be a string")
    schema1 = doc.get("schemaVersion") == 1 and not isinstance(doc.get("schemaVersion"), bool)
    if declared in DOCKER_SCHEMA1 or header in DOCKER_SCHEMA1 or schema1:
        raise _invalid("Docker image manifest schema 1 is not supported; push schema 2 or OCI")
    if declared and header and header in MANIFEST_TYPES and declared != header:
        raise _invalid(f"mediaType {declared!r} does not match Content-Type {header!r}")
    media_type = declared or (header if header in MANIFEST_TYPES else None)
    if media_type is None:
        # OCI allows mediaType to be omitted; infer it from the shape as registries do.
        media_type = OCI_INDEX if "manifests" in doc else OCI_MANIFEST
    if media_type not in MANIFEST_TYPES:
        raise _invalid(f"unsupported manifest media type {media_type!r}")
    return media_type


def parse(body: bytes, content_type: str | None) -> ParsedManifest:
    try:
        doc = limits.loads(body)
    except limits.InputRejected as exc:
        raise _invalid(f"manifest refused: {exc}") from None
    if not isinstance(doc, dict):
        raise _invalid("manifest must be a JSON object")
    media_type = _resolve_media_type(doc, content_type)
    if doc.get("schemaVersion") != 2 or isinstance(doc.get("schemaVersion"), bool):
        raise _invalid("schemaVersion must be 2")

    subject = descriptor(doc["subject"], "subject") if doc.get("subject") is not None else None
    artifact_type = doc.get("artifactType")
    if artifact_type is not None:
        _media_type(artifact_type, "artifactType")

    parsed = ParsedManifest(
        media_type=media_type,
        digest=digests.of_bytes(body),
        size=len(body),
        artifact_type=artifact_type,
        subject=subject,
        annotations=_annotations(doc.get("annotations"), "manifest"),
    )
    if media_type in IMAGE_TYPES:
        if "config" not in doc:
            raise _invalid("image manifest requires a config descriptor")
        config = descriptor(doc["config"], "config")
        layers = doc.get("layers", [])
        if not isinstance(layers, list):
            raise _invalid("layers must be a list")
        parsed.blobs = [config] + [descriptor(x, f"layers[{i}]") for i, x in enumerate(layers)]
        # The referrers API: an image manifest without artifactType is typed by its config.
        if parsed.artifact_type is None:
            parsed.artifact_type = config.media_type
    else:
        children = doc.get("manifests")
        if not isinstance(children, list):
            raise _invalid("image index requires a manifests list")
        parsed.children = [descriptor(x, f"manifests[{i}]") for i, x in enumerate(children)]
    return parsed


def is_foreign(desc: Descriptor) -> bool:
    """Non-distributable layers live elsewhere (urls); a registry need not hold them."""
    return bool(desc.urls) or "foreign" in desc.media_type or "nondistributable" in desc.media_type
