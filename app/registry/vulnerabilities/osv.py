"""One OSV record (https://ossf.github.io/osv-schema/), checked and reduced to what matching,
policy and display need. Anything malformed is a RecordRejected, which the import reports and
skips."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field

from cvss import CVSS3, CVSS4
from cvss.exceptions import CVSSError

from app import limits
from app.registry.python.names import normalize

MAX_RECORD = 2 * 1024 * 1024  # the largest records in public OSV exports are a few hundred KiB
MAX_AFFECTED = 1000
MAX_TEXT = 64 * 1024
ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:+-]{0,127}$")
EVENT_KINDS = ("introduced", "fixed", "last_affected", "limit")
RANGE_TYPES = ("ECOSYSTEM", "SEMVER", "GIT")
# database_specific.severity labels (GitHub's advisories use MODERATE) -> the lowest score of
# the CVSS band they name, so "block at >= 7" blocks a HIGH label and ">= 7.5" does not.
LABEL_SCORES = {"LOW": 0.1, "MODERATE": 4.0, "MEDIUM": 4.0, "HIGH": 7.0, "CRITICAL": 9.0}


class RecordRejected(ValueError):
    pass


@dataclass
class Affected:
    ecosystem: str  # lower-cased, release suffix removed
    ecosystem_full: str
    name: str  # normalised for the ecosystem
    ranges: list = field(default_factory=list)
    versions: list = field(default_factory=list)


@dataclass
class Record:
    id: str
    modified: str
    digest: str
    summary: str | None
    details: str | None
    aliases: list[str]
    score: float | None
    vector: str | None
    label: str | None
    references: list[dict]
    withdrawn: str | None
    affected: list[Affected]


def ecosystem_key(ecosystem: str) -> str:
    return ecosystem.split(":", 1)[0].strip().lower()


def normalise_name(ecosystem: str, name: str) -> str:
    """The name as the index keys it: PEP 503 for PyPI; NuGet and Packagist names are
    case-insensitive; others are compared as written."""
    if ecosystem == "pypi":
        return normalize(name)
    if ecosystem in ("nuget", "packagist", "rubygems"):
        return name.lower()
    return name


def _text(value, what: str, limit: int = MAX_TEXT) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise RecordRejected(f"{what} must be a string")
    return value[:limit]


def _strings(value, what: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RecordRejected(f"{what} must be a list of strings")
    return value


def score_vector(vector: str) -> float | None:
    try:
        if vector.startswith("CVSS:4"):
            return float(CVSS4(vector).base_score)
        if vector.startswith("CVSS:3"):
            return float(CVSS3(vector).scores()[0])
    except (CVSSError, ValueError, KeyError, TypeError, IndexError):
        return None
    return None


def _severity(severities) -> tuple[float | None, str | None]:
    """The highest CVSS v3 / v4 base score among the vectors given, with its vector."""
    best: tuple[float | None, str | None] = (None, None)
    if not isinstance(severities, list):
        return best
    for item in severities[:20]:
        if not isinstance(item, dict) or item.get("type") not in ("CVSS_V3", "CVSS_V4"):
            continue
        vector = item.get("score")
        if not isinstance(vector, str) or len(vector) > 255:
            continue
        score = score_vector(vector)
        if score is not None and (best[0] is None or score > best[0]):
            best = (score, vector)
    return best


def _label(record: dict) -> str | None:
    specific = record.get("database_specific")
    value = specific.get("severity") if isinstance(specific, dict) else None
    if isinstance(value, str) and value.strip().upper() in LABEL_SCORES:
        return value.strip().upper()
    return None


def _ranges(value) -> list[dict]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise RecordRejected("affected[].ranges must be a list")
    out = []
    for rng in value:
        if not isinstance(rng, dict) or rng.get("type") not in RANGE_TYPES:
            raise RecordRejected("a range needs a type of ECOSYSTEM, SEMVER or GIT")
        events = rng.get("events")
        if not isinstance(events, list) or not events:
            raise RecordRejected("a range needs a list of events")
        clean = []
        for event in events:
            if not isinstance(event, dict) or len(event) != 1:
                raise RecordRejected("each event holds exactly one of " + ", ".join(EVENT_KINDS))
            ((kind, version),) = event.items()
            if kind not in EVENT_KINDS or not isinstance(version, str) or not version:
                raise RecordRejected(f"invalid event {kind!r}")
            clean.append({kind: version[:256]})
        if not any("introduced" in e for e in clean):
            raise RecordRejected("a range needs an introduced event")
        out.append({"type": rng["type"], "events": clean})
    return out


def _affected(value) -> list[Affected]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_AFFECTED:
        raise RecordRejected(f"affected must be a list of at most {MAX_AFFECTED} entries")
    out = []
    for entry in value:
        if not isinstance(entry, dict):
            raise RecordRejected("affected[] entries must be objects")
        package = entry.get("package")
        if package is None:
            continue  # an entry for a git repository alone: nothing a package version names
        if not isinstance(package, dict):
            raise RecordRejected("affected[].package must be an object")
        ecosystem, name = package.get("ecosystem"), package.get("name")
        if not isinstance(ecosystem, str) or not isinstance(name, str) or not ecosystem or not name:
            raise RecordRejected("affected[].package needs an ecosystem and a name")
        key = ecosystem_key(ecosystem)
        out.append(
            Affected(
                ecosystem=key[:64],
                ecosystem_full=ecosystem[:255],
                name=normalise_name(key, name)[:255],
                ranges=_ranges(entry.get("ranges")),
                versions=[v[:256] for v in _strings(entry.get("versions"), "versions")],
            )
        )
    return out


def parse(data: bytes) -> Record:
    if len(data) > MAX_RECORD:
        raise RecordRejected(f"record exceeds {MAX_RECORD} bytes")
    try:
        doc = limits.loads(data)
    except limits.InputRejected as exc:
        raise RecordRejected(str(exc)) from None
    if not isinstance(doc, dict):
        raise RecordRejected("a record is a JSON object")
    ident, modified = doc.get("id"), doc.get("modified")
    if not isinstance(ident, str) or not ID.match(ident):
        raise RecordRejected("id is missing or not an identifier")
    if not isinstance(modified, str) or not modified or len(modified) > 64:
        raise RecordRejected(f"{ident}: modified is missing")
    try:
        affected = _affected(doc.get("affected"))
        score, vector = _severity(doc.get("severity"))
        for entry in doc.get("affected") or []:
            if isinstance(entry, dict):
                s, v = _severity(entry.get("severity"))
                if s is not None and (score is None or s > score):
                    score, vector = s, v
        references = [
            {"type": str(r.get("type", ""))[:32], "url": r["url"][:2048]}
            for r in (doc.get("references") or [])[:50]
            if isinstance(r, dict) and isinstance(r.get("url"), str)
        ]
        record = Record(
            id=ident,
            modified=modified,
            digest=hashlib.sha256(
                json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
            ).hexdigest(),
            summary=_text(doc.get("summary"), "summary", 1024),
            details=_text(doc.get("details"), "details"),
            aliases=[a[:128] for a in _strings(doc.get("aliases"), "aliases")][:50],
            score=score,
            vector=vector,
            label=_label(doc),
            references=references,
            withdrawn=_text(doc.get("withdrawn"), "withdrawn", 64),
            affected=affected,
        )
    except RecordRejected as exc:
        raise RecordRejected(f"{ident}: {exc}") from None
    return record
