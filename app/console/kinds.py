"""What kind of thing a manifest holds, told from its media type and artifact type, as people
name them: an image, a multi-arch index, a Helm chart, a Python file, a signature, an SBOM."""

from __future__ import annotations

from app.registry.manifests import INDEX_TYPES

IMAGE_CONFIGS = (
    "application/vnd.oci.image.config.v1+json",
    "application/vnd.docker.container.image.v1+json",
)
HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"
PYTHON_ARTIFACT = "application/vnd.python.artifact"
SIGNATURE_MARKERS = ("signature", "cosign", "sigstore", "notary")
SBOM_MARKERS = ("spdx", "cyclonedx", "sbom", "syft")
ATTESTATION_MARKERS = ("in-toto", "intoto", "attestation", "provenance", "vex")


def kind_of(media_type: str, artifact_type: str | None) -> str:
    if media_type in INDEX_TYPES:
        return "index"
    kind = (artifact_type or "").lower()
    if not kind or kind in IMAGE_CONFIGS:
        return "image"
    if kind == HELM_CONFIG:
        return "helm"
    if kind == PYTHON_ARTIFACT:
        return "python"
    if any(m in kind for m in SIGNATURE_MARKERS):
        return "signature"
    if any(m in kind for m in SBOM_MARKERS):
        return "sbom"
    if any(m in kind for m in ATTESTATION_MARKERS):
        return "attestation"
    return "artifact"


LABELS = {
    "index": "multi-arch index",
    "image": "image",
    "helm": "Helm chart",
    "python": "Python file",
    "signature": "signature",
    "sbom": "SBOM",
    "attestation": "attestation",
    "artifact": "artifact",
}
