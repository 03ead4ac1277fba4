"""Vulnerability reports: for a Python file by its name and version, for an image through the
SBOMs attached to it as referrers, for an index through its children. Cached per (repository,
subject digest, database version) with the SBOM digests they were computed from, so a new
database version or a newly attached SBOM makes them be computed again."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app import limits
from app.models import (
    Advisory,
    AffectedPackage,
    Manifest,
    PythonFile,
    Repository,
    VulnDatabaseVersion,
    VulnReport,
    db,
)
from app.registry import manifest_store
from app.registry.manifests import INDEX_TYPES
from app.registry.python.names import normalize
from app.registry.vulnerabilities import sbom
from app.registry.vulnerabilities.importer import current_version
from app.registry.vulnerabilities.osv import LABEL_SCORES
from app.registry.vulnerabilities.versions import affects
from app.storage import BlobStore

PYTHON_ARTIFACT = "application/vnd.python.artifact"
MAX_SBOM = 64 * 1024 * 1024
MAX_MANIFEST = 4 * 1024 * 1024
MAX_REFERRERS = 200  # referrers read per subject when looking for SBOMs
MAX_SBOMS = 20  # SBOM referrers read per manifest
MAX_CHILDREN = 64  # an index's children reported on
SEVERITIES = ((9.0, "critical"), (7.0, "high"), (4.0, "medium"), (0.1, "low"), (0.0, "none"))


def severity_name(score: float | None) -> str:
    if score is None:
        return "unknown"
    return next(name for bound, name in SEVERITIES if score >= bound)


def effective_score(advisory: Advisory) -> float | None:
    """The CVSS base score, else the lowest score of the record's severity label's band."""
    if advisory.score is not None:
        return advisory.score
    return LABEL_SCORES.get(advisory.label or "")


def _fixed_in(ranges: list | None) -> list[str]:
    return sorted({e["fixed"] for r in ranges or [] for e in r.get("events", []) if "fixed" in e})[
        :10
    ]


def same_release(ecosystem_full: str, release: str | None) -> bool:
    """An advisory scoped to a distribution release ("Debian:12", "Ubuntu:22.04:LTS",
    "Alpine:v3.19") applies to a package of that release; when either side names none, it
    applies."""
    _, _, suffix = ecosystem_full.partition(":")
    if not suffix or release is None:
        return True
    return suffix == release or suffix.startswith(release + ":")


def match(ecosystem: str, name: str, version: str, release: str | None = None) -> list[dict]:
    rows = db.session.execute(
        select(AffectedPackage, Advisory)
        .join(Advisory, Advisory.id == AffectedPackage.advisory_id)
        .where(AffectedPackage.ecosystem == ecosystem, AffectedPackage.name == name)
        .order_by(Advisory.id)
    ).all()
    found: dict[str, dict] = {}
    for pkg, adv in rows:
        if adv.withdrawn or adv.id in found or not same_release(pkg.ecosystem_full, release):
            continue
        if not affects(version, ecosystem, pkg.ranges, pkg.versions):
            continue
        score = effective_score(adv)
        found[adv.id] = {
            "id": adv.id,
            "aliases": adv.aliases or [],
            "summary": adv.summary,
            "score": score,
            "cvss_score": adv.score,
            "cvss_vector": adv.vector,
            "label": adv.label,
            "severity": severity_name(score),
            "package": {"ecosystem": pkg.ecosystem_full, "name": name, "version": version},
            "fixed_in": _fixed_in(pkg.ranges),
        }
    return list(found.values())


@dataclass
class Subject:
    """What a report describes, and what it is computed from."""

    repo: Repository
    digest: str
    kind: str  # "python-file", "image", "index", "artifact"
    inputs: list[str]


def _read(store: BlobStore, digest: str, limit: int) -> bytes | None:
    try:
        with store.open(digest) as f:
            data = f.read(limit + 1)
    except OSError:
        return None
    return data if len(data) <= limit else None


def _json(store: BlobStore, digest: str, limit: int) -> dict | None:
    data = _read(store, digest, limit)
    if data is None:
        return None
    try:
        doc = limits.loads(data)
    except limits.InputRejected:
        return None
    return doc if isinstance(doc, dict) else None


def _sbom_layers(store: BlobStore, referrer: Manifest) -> list[str]:
    doc = _json(store, referrer.digest, MAX_MANIFEST) or {}
    config = doc.get("config") if isinstance(doc.get("config"), dict) else {}
    declared = {referrer.artifact_type, config.get("mediaType")} & sbom.SBOM_TYPES
    out = []
    for layer in (doc.get("layers") or [])[:8]:
        if not isinstance(layer, dict) or not isinstance(layer.get("digest"), str):
            continue
        if declared or layer.get("mediaType") in sbom.SBOM_TYPES:
            out.append(layer["digest"])
    return out


def _referrers(repo: Repository, digest: str) -> list[Manifest]:
    return manifest_store.referrer_manifests(repo, digest, limit=MAX_REFERRERS)


def _children(store: BlobStore, repo: Repository, manifest: Manifest) -> list[Manifest]:
    doc = _json(store, manifest.digest, MAX_MANIFEST) or {}
    digests = [
        m["digest"]
        for m in (doc.get("manifests") or [])[:MAX_CHILDREN]
        if isinstance(m, dict) and isinstance(m.get("digest"), str)
    ]
    if not digests:
        return []
    return list(
        db.session.execute(
            select(Manifest).where(Manifest.repository_id == repo.id, Manifest.digest.in_(digests))
        ).scalars()
    )


def _python_file(repo: Repository, digest: str) -> PythonFile | None:
    return db.session.execute(
        select(PythonFile).where(
            PythonFile.registry_id == repo.registry_id,
            PythonFile.manifest_digest == digest,
            PythonFile.deleted_at.is_(None),
        )
    ).scalar_one_or_none()


def _image_findings(store: BlobStore, repo: Repository, digest: str) -> tuple[list, list]:
    """Findings from the SBOM referrers of one manifest, and the SBOMs read."""
    findings: dict[str, dict] = {}
    sboms = []
    for referrer in _referrers(repo, digest):
        for layer in _sbom_layers(store, referrer):
            if len(sboms) >= MAX_SBOMS:
                break
            data = _read(store, layer, MAX_SBOM)
            if data is None:
                sboms.append({"digest": referrer.digest, "error": "unreadable or too large"})
                continue
            try:
                comps = sbom.components(data)
            except sbom.NotAnSbom as exc:
                sboms.append({"digest": referrer.digest, "error": str(exc)[:200]})
                continue
            sboms.append({"digest": referrer.digest, "components": len(comps)})
            for c in comps:
                for f in match(c.ecosystem, c.name, c.version, c.release):
                    f["package"]["purl"] = c.purl
                    findings.setdefault(f"{f['id']} {c.purl}", f)
    return list(findings.values()), sboms


def _compute(store: BlobStore, repo: Repository, manifest: Manifest) -> dict:
    if manifest.artifact_type == PYTHON_ARTIFACT and (pf := _python_file(repo, manifest.digest)):
        return {"kind": "python-file", **file_findings(pf)}
    findings, sboms = _image_findings(store, repo, manifest.digest)
    kind = "index" if manifest.media_type in INDEX_TYPES else "image"
    out = {"kind": kind, "sboms": sboms, "findings": findings}
    if kind == "index":
        out["children"] = []
        for child in _children(store, repo, manifest):
            child_findings, child_sboms = _image_findings(store, repo, child.digest)
            out["children"].append(
                {"digest": child.digest, "sboms": child_sboms, "findings": child_findings}
            )
            out["findings"].extend(dict(f, via=child.digest) for f in child_findings)
    return out


def file_findings(pf: PythonFile) -> dict:
    name = normalize(pf.project.name) if pf.project else ""
    return {"findings": match("pypi", name, pf.version), "sboms": []}


def _inputs(store: BlobStore, repo: Repository, manifest: Manifest) -> str:
    """What the report depends on besides the database: the SBOM referrers (and an index's
    children with theirs), as a string that changes when they do."""
    own = [m.digest for m in _referrers(repo, manifest.digest)]
    parts = [",".join(own)]
    if manifest.media_type in INDEX_TYPES:
        for child in _children(store, repo, manifest):
            parts.append(
                child.digest + ":" + ",".join(m.digest for m in _referrers(repo, child.digest))
            )
    return "|".join(parts)


def summarise(findings: list[dict]) -> dict[str, int]:
    counts = {name: 0 for _, name in SEVERITIES} | {"unknown": 0}
    seen = set()
    for f in findings:
        if f["id"] in seen:
            continue
        seen.add(f["id"])
        counts[f["severity"]] += 1
    return counts


def database_json(version: VulnDatabaseVersion | None) -> dict | None:
    if version is None:
        return None
    return {"version": version.id, "imported_at": version.imported_at.isoformat() + "Z"}


def manifest_report(store: BlobStore, repo: Repository, manifest: Manifest) -> dict:
    version = current_version()
    if version is None:
        return {"digest": manifest.digest, "database": None, "findings": [], "summary": {}}
    inputs = _inputs(store, repo, manifest)
    cached = db.session.execute(
        select(VulnReport).where(
            VulnReport.repository_id == repo.id,
            VulnReport.subject_digest == manifest.digest,
            VulnReport.version_id == version.id,
        )
    ).scalar_one_or_none()
    if cached is not None and cached.inputs == inputs:
        return cached.report
    body = _compute(store, repo, manifest)
    report = {
        "digest": manifest.digest,
        "database": database_json(version),
        **body,
        "summary": summarise(body["findings"]),
    }
    _remember(cached, repo, manifest.digest, version.id, inputs, report)
    return report


def _remember(cached, repo, digest, version_id, inputs, report) -> None:
    if cached is not None:
        cached.inputs, cached.report = inputs, report
        db.session.flush()
        return
    try:
        with db.session.begin_nested():
            db.session.add(
                VulnReport(
                    repository_id=repo.id,
                    subject_digest=digest,
                    version_id=version_id,
                    inputs=inputs,
                    report=report,
                )
            )
    except IntegrityError:
        pass  # another request stored the same report first


def python_file_report(pf: PythonFile) -> dict:
    """A file's report is a couple of indexed lookups: computed each time, never stale."""
    version = current_version()
    body = file_findings(pf) if version is not None else {"findings": [], "sboms": []}
    return {
        "filename": pf.filename,
        "version": pf.version,
        "digest": pf.manifest_digest,
        "database": database_json(version),
        "findings": body["findings"],
        "summary": summarise(body["findings"]),
    }
