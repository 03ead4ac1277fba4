"""OSV records and SBOMs (SPDX 2.3, CycloneDX 1.5) written by the tests."""

from __future__ import annotations

import json
from pathlib import Path

CRITICAL_V3 = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"  # 9.8
MEDIUM_V3 = "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:L/I:L/A:N"  # 5.4
HIGH_V4 = "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"  # 9.3


def record(
    ident: str,
    ecosystem: str,
    name: str,
    *,
    events: list[dict] | None = None,
    versions: list[str] | None = None,
    range_type: str = "ECOSYSTEM",
    vector: str | None = CRITICAL_V3,
    label: str | None = None,
    summary: str | None = None,
    modified: str = "2026-01-01T00:00:00Z",
) -> dict:
    affected: dict = {"package": {"ecosystem": ecosystem, "name": name}}
    if events is not None:
        affected["ranges"] = [{"type": range_type, "events": events}]
    if versions is not None:
        affected["versions"] = versions
    doc: dict = {
        "schema_version": "1.6.0",
        "id": ident,
        "modified": modified,
        "summary": summary or f"{name} is vulnerable",
        "details": f"Details of {ident}.",
        "aliases": [f"CVE-2026-{abs(hash(ident)) % 100000:05d}"],
        "affected": [affected],
    }
    if vector:
        kind = "CVSS_V4" if vector.startswith("CVSS:4") else "CVSS_V3"
        doc["severity"] = [{"type": kind, "score": vector}]
    if label:
        doc["database_specific"] = {"severity": label}
    return doc


def write_records(folder: Path, records: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for r in records:
        sub = folder / r["affected"][0]["package"]["ecosystem"].split(":")[0]
        sub.mkdir(exist_ok=True)
        (sub / f"{r['id']}.json").write_text(json.dumps(r))
    return folder


def spdx(purls: list[str]) -> bytes:
    return json.dumps(
        {
            "spdxVersion": "SPDX-2.3",
            "dataLicense": "CC0-1.0",
            "SPDXID": "SPDXRef-DOCUMENT",
            "name": "test-image",
            "documentNamespace": "https://example.invalid/spdx/test",
            "creationInfo": {"created": "2026-01-01T00:00:00Z", "creators": ["Tool: tests"]},
            "packages": [
                {
                    "SPDXID": f"SPDXRef-Package-{i}",
                    "name": purl.split("/")[-1].split("@")[0],
                    "downloadLocation": "NOASSERTION",
                    "externalRefs": [
                        {
                            "referenceCategory": "PACKAGE-MANAGER",
                            "referenceType": "purl",
                            "referenceLocator": purl,
                        }
                    ],
                }
                for i, purl in enumerate(purls)
            ],
        }
    ).encode()


def cyclonedx(purls: list[str], nested: list[str] | None = None) -> bytes:
    components = [
        {"type": "library", "name": p.split("/")[-1].split("@")[0], "purl": p} for p in purls
    ]
    if nested:
        components.append(
            {
                "type": "application",
                "name": "bundle",
                "components": [{"type": "library", "name": "n", "purl": p} for p in nested],
            }
        )
    return json.dumps(
        {
            "bomFormat": "CycloneDX",
            "specVersion": "1.5",
            "version": 1,
            "metadata": {"timestamp": "2026-01-01T00:00:00Z"},
            "components": components,
        }
    ).encode()


SPDX_TYPE = "application/spdx+json"
CYCLONEDX_TYPE = "application/vnd.cyclonedx+json"
EMPTY_CONFIG = "application/vnd.oci.empty.v1+json"


def attach_sbom(client, repo: str, subject: str, subject_size: int, body: bytes, kind: str):
    """Push an SBOM as a referrer of `subject`, as `oras attach --artifact-type` does."""
    empty = client.push_blob(repo, b"{}")
    layer = client.push_blob(repo, body)
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": kind,
        "config": {"mediaType": EMPTY_CONFIG, "digest": empty, "size": 2},
        "layers": [{"mediaType": kind, "digest": layer, "size": len(body)}],
        "subject": {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": subject,
            "size": subject_size,
        },
    }
    from tests.support.client import digest_of

    r = client.push_manifest(repo, digest_of(json.dumps(manifest).encode()), manifest)
    assert r.status_code == 201, r.text
    return r.headers["Docker-Content-Digest"]
