"""cosign's tag scheme: the signatures of `sha256:<hex>` sit in the manifest tagged
`sha256-<hex>.sig` in the same repository, one layer per signature. A layer is a simple-signing
payload (`application/vnd.dev.cosign.simplesigning.v1+json`) naming the signed manifest's digest,
its signature in the `dev.cosignproject.cosign/signature` annotation (cosign's SIGNATURE_SPEC)."""

from __future__ import annotations

from cryptography import x509

from app.models import Manifest
from app.registry.signing import crypto
from app.registry.signing.reading import (
    MAX_PAYLOAD,
    Finding,
    Unreadable,
    b64,
    json_object,
    layers,
    manifest_doc,
    read,
)
from app.storage import BlobStore

SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE = "dev.cosignproject.cosign/signature"
CERTIFICATE = "dev.sigstore.cosign/certificate"
CHAIN = "dev.sigstore.cosign/chain"
SIGNATURE_TYPE = "cosign container image signature"
MAX_PEM = 64 * 1024


def signature_tag(digest: str) -> str | None:
    algorithm, _, hexpart = digest.partition(":")
    return f"{algorithm}-{hexpart}.sig" if algorithm == "sha256" else None


def _signed_digest(payload: bytes) -> str:
    doc = json_object(payload, "the simple-signing payload")
    critical = doc.get("critical")
    if not isinstance(critical, dict) or critical.get("type") != SIGNATURE_TYPE:
        raise Unreadable(f"the payload's critical.type is not {SIGNATURE_TYPE!r}")
    image = critical.get("image")
    if not isinstance(image, dict):
        raise Unreadable("the payload names no image")
    # The spec's example spells the key Docker-manifest-digest, cosign writes it in lower case.
    for key, value in image.items():
        if (
            isinstance(key, str)
            and key.lower() == "docker-manifest-digest"
            and isinstance(value, str)
        ):
            return value
    raise Unreadable("the payload names no docker-manifest-digest")


def _certificates(annotations: dict) -> list[x509.Certificate]:
    pem = annotations.get(CERTIFICATE)
    if not isinstance(pem, str) or not pem:
        return []
    chain = annotations.get(CHAIN) if isinstance(annotations.get(CHAIN), str) else ""
    text = (pem + "\n" + chain).encode()
    if len(text) > MAX_PEM:
        raise Unreadable("the signature's certificate annotations are too long")
    try:
        return x509.load_pem_x509_certificates(text)
    except ValueError:
        raise Unreadable("the signature's certificate cannot be read") from None


def _verify_layer(
    store: BlobStore, layer: dict, digest: str, trusted: list[crypto.TrustedKey]
) -> tuple[str, str]:
    """(key name, detail) of a valid signature; Unreadable with the reason otherwise."""
    if layer.get("mediaType") != SIMPLE_SIGNING:
        raise Unreadable(f"a layer of type {layer.get('mediaType')!r} is not a signature")
    annotations = layer.get("annotations") if isinstance(layer.get("annotations"), dict) else {}
    signature = b64(annotations.get(SIGNATURE), "the signature annotation", limit=4096)
    payload = read(store, str(layer.get("digest")), layer.get("size"), MAX_PAYLOAD)
    candidates = list(trusted)
    chain_problem = ""
    certs = _certificates(annotations)
    if certs:
        # A signature carrying a certificate: the certificate must lead to a registered one.
        try:
            anchor = crypto.anchor(certs, trusted)
        except crypto.ChainError as exc:
            candidates = []
            chain_problem = str(exc)
        else:
            candidates = [crypto.TrustedKey(anchor.name, certs[0].public_key())]  # type: ignore[arg-type]
    for t in candidates:
        if crypto.verify(t.public_key, signature, payload):
            signed = _signed_digest(payload)
            if signed != digest:
                raise Unreadable(f"signed by {t.name!r} but for {signed}, not this manifest")
            return t.name, "simple-signing payload signed"
    if certs and not candidates:
        raise Unreadable(chain_problem)
    raise Unreadable("made with none of the registry's active keys")


def check(store: BlobStore, signature: Manifest, digest: str, trusted) -> list[Finding]:
    """One finding per signature layer of the `.sig` manifest."""
    try:
        doc = manifest_doc(store, signature)
    except Unreadable as exc:
        return [Finding("cosign", signature.digest, detail=str(exc))]
    found = []
    for i, layer in enumerate(layers(doc)):
        finding = Finding("cosign", signature.digest, extra={"layer": i})
        try:
            finding.key, finding.detail = _verify_layer(store, layer, digest, trusted)
            finding.valid = True
        except Unreadable as exc:
            finding.detail = str(exc)
        found.append(finding)
    return found or [Finding("cosign", signature.digest, detail="the manifest has no layers")]
