"""How a Python file is described as an OCI artifact.

Each file is one OCI image manifest in `<org>/<registry>/cargohold.pypi/<project>`:

- artifactType `application/vnd.python.artifact`;
- config: the file's core metadata (wheel METADATA / sdist PKG-INFO), which PEP 658 serves;
- one layer: the file itself, titled with its filename so `oras pull` writes it back out;
- annotations: the core-metadata fields (all but the long description).
"""

from __future__ import annotations

import json

from app.pypi.distributions import SDIST, WHEEL, CoreMetadata, DistFilename
from app.registry.manifests import OCI_MANIFEST
from app.registry.names import TAG

ARTIFACT_TYPE = "application/vnd.python.artifact"
METADATA_MEDIA_TYPE = "application/vnd.python.core-metadata"
FILE_MEDIA_TYPES = {WHEEL: "application/vnd.python.wheel", SDIST: "application/vnd.python.sdist"}
TITLE = "org.opencontainers.image.title"
CORE_METADATA_PREFIX = "org.python.core-metadata."
MAX_MANIFEST = 4 * 1024 * 1024

# packaging's RawMetadata keys whose email header is not simply the key with dashes.
_HEADER_NAMES = {
    "classifiers": "classifier",
    "platforms": "platform",
    "supported_platforms": "supported-platform",
    "project_urls": "project-url",
    "license_files": "license-file",
    "import_names": "import-name",
    "import_namespaces": "import-namespace",
}


def annotations(meta: CoreMetadata, dist: DistFilename) -> dict[str, str]:
    notes = {
        TITLE: dist.filename,
        "org.opencontainers.image.version": str(dist.version),
        "org.python.project": dist.project,
        "org.python.filetype": dist.filetype,
    }
    if meta.raw.get("summary"):
        notes["org.opencontainers.image.description"] = str(meta.raw["summary"])
    if meta.raw.get("license_expression"):
        notes["org.opencontainers.image.licenses"] = str(meta.raw["license_expression"])
    for key, value in meta.raw.items():
        if key == "description":  # the README; it stays in the config blob
            continue
        header = _HEADER_NAMES.get(key, key.replace("_", "-"))
        if isinstance(value, dict):
            text = "\n".join(f"{k}, {v}" for k, v in value.items())
        elif isinstance(value, list):
            text = "\n".join(str(v) for v in value)
        else:
            text = str(value)
        notes[CORE_METADATA_PREFIX + header] = text
    return notes


def tag_for(filename: str) -> str | None:
    """A readable tag for `oras pull repo:<tag>`, when the filename fits the tag grammar."""
    tag = filename.replace("+", "_").replace("!", "_")
    return tag if TAG.match(tag) else None


def manifest(
    dist: DistFilename,
    size: int,
    digest: str,
    meta_digest: str,
    meta_size: int,
    notes: dict[str, str],
) -> bytes:
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": ARTIFACT_TYPE,
        "config": {"mediaType": METADATA_MEDIA_TYPE, "digest": meta_digest, "size": meta_size},
        "layers": [
            {
                "mediaType": FILE_MEDIA_TYPES[dist.filetype],
                "digest": digest,
                "size": size,
                "annotations": {TITLE: dist.filename},
            }
        ],
        "annotations": notes,
    }
    # No timestamps: the same file always yields the same manifest, so racing identical
    # uploads converge on one digest.
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()
