"""Packages named by an SBOM: SPDX 2.3 JSON (`packages[].externalRefs` of type purl) and
CycloneDX 1.5+ JSON (`components[].purl`, nested components too), as (ecosystem, name,
version) the OSV index can look up."""

from __future__ import annotations

from dataclasses import dataclass

from packageurl import PackageURL

from app import limits
from app.registry.vulnerabilities.osv import normalise_name

SPDX_TYPES = frozenset({"application/spdx+json", "text/spdx+json", "application/spdx"})
CYCLONEDX_TYPES = frozenset(
    {"application/vnd.cyclonedx+json", "application/vnd.cyclonedx", "application/cyclonedx+json"}
)
SBOM_TYPES = SPDX_TYPES | CYCLONEDX_TYPES
MAX_COMPONENTS = 50_000
MAX_DEPTH = 64  # JSON nesting; CycloneDX nests components in components

# purl type -> OSV ecosystem (lower-cased as the index keys it).
PURL_ECOSYSTEMS = {
    "pypi": "pypi",
    "npm": "npm",
    "golang": "go",
    "maven": "maven",
    "cargo": "crates.io",
    "gem": "rubygems",
    "nuget": "nuget",
    "composer": "packagist",
    "hex": "hex",
    "pub": "pub",
    "hackage": "hackage",
    "cran": "cran",
    "swift": "swift",
}
# deb and apk purls name their distribution in the namespace.
DISTRO_ECOSYSTEMS = {"debian": "debian", "ubuntu": "ubuntu", "alpine": "alpine"}


class NotAnSbom(ValueError):
    pass


@dataclass(frozen=True)
class Component:
    ecosystem: str
    name: str
    version: str
    purl: str
    # The distribution release a deb or apk purl names (its `distro` qualifier), as OSV's
    # ecosystem suffix spells it: "12" (Debian:12), "22.04" (Ubuntu:22.04), "v3.19" (Alpine).
    release: str | None = None


def _release(purl: PackageURL, ecosystem: str) -> str | None:
    distro = (purl.qualifiers or {}).get("distro")
    if not isinstance(distro, str) or not distro:
        return None
    value = distro.rsplit("-", 1)[-1] if "-" in distro else distro
    if ecosystem == "alpine":
        parts = value.lstrip("v").split(".")
        return "v" + ".".join(parts[:2]) if len(parts) >= 2 and parts[0].isdigit() else None
    if ecosystem == "debian":
        return value.split(".")[0] if value.split(".")[0].isdigit() else None
    return value if ecosystem == "ubuntu" else None


def _name(purl: PackageURL, ecosystem: str) -> str:
    if ecosystem == "npm" and purl.namespace:
        return f"{purl.namespace}/{purl.name}"
    if ecosystem == "go" and purl.namespace:
        return f"{purl.namespace}/{purl.name}"
    if ecosystem == "maven" and purl.namespace:
        return f"{purl.namespace}:{purl.name}"
    if ecosystem == "packagist" and purl.namespace:
        return f"{purl.namespace}/{purl.name}"
    if ecosystem in ("debian", "ubuntu", "alpine"):
        # OSV names distribution packages by their source package; syft's purls carry it in
        # the `upstream` qualifier ("openssl" or "openssl@3.0.11-1").
        upstream = (purl.qualifiers or {}).get("upstream")
        if isinstance(upstream, str) and upstream:
            return upstream.split("@", 1)[0].split(" ", 1)[0]
    return purl.name


def from_purl(text: str) -> Component | None:
    if not isinstance(text, str) or len(text) > 2048:
        return None
    try:
        purl = PackageURL.from_string(text)
    except ValueError:
        return None
    if not purl.version:
        return None
    ptype = purl.type.lower()
    if ptype in ("deb", "apk"):
        ecosystem = DISTRO_ECOSYSTEMS.get((purl.namespace or "").lower())
    else:
        ecosystem = PURL_ECOSYSTEMS.get(ptype)
    if ecosystem is None:
        return None
    version = purl.version
    if ecosystem == "go" and version.startswith("v"):
        version = version[1:]  # OSV's Go records give versions without the v
    name = normalise_name(ecosystem, _name(purl, ecosystem))
    return Component(ecosystem, name, version[:256], text, _release(purl, ecosystem))


def _spdx(doc: dict) -> list[str]:
    purls = []
    for package in doc.get("packages") or []:
        if not isinstance(package, dict):
            continue
        for ref in package.get("externalRefs") or []:
            if (
                isinstance(ref, dict)
                and str(ref.get("referenceType", "")).lower() == "purl"
                and isinstance(ref.get("referenceLocator"), str)
            ):
                purls.append(ref["referenceLocator"])
    return purls


def _cyclonedx(doc: dict) -> list[str]:
    purls, stack = [], [doc.get("components") or []]
    meta = doc.get("metadata")
    if isinstance(meta, dict) and isinstance(meta.get("component"), dict):
        stack.append([meta["component"]])
    while stack and len(purls) <= MAX_COMPONENTS:
        items = stack.pop()
        if not isinstance(items, list):
            continue
        for item in items:
            if not isinstance(item, dict):
                continue
            if isinstance(item.get("purl"), str):
                purls.append(item["purl"])
            if item.get("components"):
                stack.append(item["components"])
    return purls


def components(data: bytes) -> list[Component]:
    """The packages of an SBOM document (already read within its bound)."""
    try:
        doc = limits.loads(data, MAX_DEPTH)
    except limits.InputRejected as exc:
        raise NotAnSbom(str(exc)) from None
    if not isinstance(doc, dict):
        raise NotAnSbom("an SBOM is a JSON object")
    if isinstance(doc.get("spdxVersion"), str):
        purls = _spdx(doc)
    elif doc.get("bomFormat") == "CycloneDX":
        purls = _cyclonedx(doc)
    else:
        raise NotAnSbom("neither SPDX (spdxVersion) nor CycloneDX (bomFormat) JSON")
    found: dict[tuple[str, str, str], Component] = {}
    for text in purls[:MAX_COMPONENTS]:
        c = from_purl(text)
        if c is not None:
            found.setdefault((c.ecosystem, c.name, c.version), c)
    return list(found.values())
