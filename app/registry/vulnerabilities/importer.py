"""`flask vulns import PATH`: OSV records from a directory (searched recursively) or a zip
file, read with bounds on every record and on the archive before anything is parsed.

An import that changes something becomes a new database version; importing the same data
again changes nothing and makes no version. Malformed records are reported and skipped.
"""

from __future__ import annotations

import hashlib
import stat
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import delete, select

from app.errors import Invalid
from app.models import Advisory, AffectedPackage, VulnDatabaseVersion, VulnReport, db
from app.registry.vulnerabilities import osv

MAX_MEMBERS = 500_000  # the whole public OSV export is under this
MAX_TOTAL = 8 * 1024**3  # uncompressed bytes an archive may expand to
MAX_RATIO = 200  # a member that claims to expand more than this is a bomb
MAX_PROBLEMS = 1000  # problems kept for the report; the count goes on


@dataclass
class ImportResult:
    version: int | None = None
    unchanged: bool = False
    advisories: int = 0
    added: int = 0
    updated: int = 0
    skipped: int = 0
    problems: list[str] = field(default_factory=list)

    def problem(self, text: str) -> None:
        self.skipped += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(text)


def _read_file(path: Path, limit: int) -> bytes:
    with path.open("rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise osv.RecordRejected(f"record exceeds {limit} bytes")
    return data


def _from_directory(root: Path, result: ImportResult) -> Iterator[tuple[str, bytes]]:
    count = 0
    for path in sorted(root.rglob("*.json")):
        mode = path.lstat().st_mode
        if not stat.S_ISREG(mode):
            continue  # symlinks could reach outside the tree; devices and fifos never end
        count += 1
        if count > MAX_MEMBERS:
            raise Invalid(f"{root}: more than {MAX_MEMBERS} records")
        name = str(path.relative_to(root))
        try:
            yield name, _read_file(path, osv.MAX_RECORD)
        except osv.RecordRejected as exc:
            result.problem(f"{name}: {exc}")


def _from_zip(path: Path, result: ImportResult) -> Iterator[tuple[str, bytes]]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise Invalid(f"{path}: not a readable zip file ({exc})") from None
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        if len(members) > MAX_MEMBERS:
            raise Invalid(f"{path}: more than {MAX_MEMBERS} members")
        if sum(m.file_size for m in members) > MAX_TOTAL:
            raise Invalid(f"{path}: expands to more than {MAX_TOTAL} bytes")
        for member in members:
            if not member.filename.endswith(".json"):
                continue
            try:
                yield member.filename, _read_member(archive, member)
            except osv.RecordRejected as exc:
                result.problem(f"{member.filename}: {exc}")


def _read_member(archive: zipfile.ZipFile, member: zipfile.ZipInfo) -> bytes:
    if member.file_size > osv.MAX_RECORD:
        raise osv.RecordRejected(f"record exceeds {osv.MAX_RECORD} bytes")
    if member.file_size > MAX_RATIO * max(member.compress_size, 1) + 4096:
        raise osv.RecordRejected("compression ratio is implausible (a zip bomb?)")
    # The sizes in the directory are claims: the read is bounded whatever they say.
    try:
        with archive.open(member) as f:
            data = f.read(osv.MAX_RECORD + 1)
    except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError, EOFError) as exc:
        raise osv.RecordRejected(f"unreadable member ({exc})") from None
    if len(data) > osv.MAX_RECORD:
        raise osv.RecordRejected(f"record exceeds {osv.MAX_RECORD} bytes")
    return data


def read_records(path: Path, result: ImportResult) -> Iterator[tuple[str, bytes]]:
    if path.is_dir():
        return _from_directory(path, result)
    if path.is_file():
        if path.suffix.lower() == ".zip" or zipfile.is_zipfile(path):
            return _from_zip(path, result)
        return _single(path, result)
    raise Invalid(f"{path}: no such file or directory")


def _single(path: Path, result: ImportResult) -> Iterator[tuple[str, bytes]]:
    try:
        yield path.name, _read_file(path, osv.MAX_RECORD)
    except osv.RecordRejected as exc:
        result.problem(f"{path.name}: {exc}")


def _scan(path: Path, result: ImportResult) -> dict[str, tuple[str, str]]:
    """First pass: every valid record's id -> (modified, content digest). Only these small
    pairs are kept, so an export of hundreds of thousands of records fits in memory."""
    seen: dict[str, tuple[str, str]] = {}
    for name, data in read_records(path, result):
        try:
            record = osv.parse(data)
        except osv.RecordRejected as exc:
            result.problem(f"{name}: {exc}")
            continue
        # Two records with one id: the later `modified` is authoritative (the schema's rule).
        known = seen.get(record.id)
        if known is None or record.modified >= known[0]:
            seen[record.id] = (record.modified, record.digest)
    return seen


def current_version() -> VulnDatabaseVersion | None:
    return db.session.execute(
        select(VulnDatabaseVersion).order_by(VulnDatabaseVersion.id.desc()).limit(1)
    ).scalar_one_or_none()


def _content_digest(seen: dict[str, tuple[str, str]]) -> str:
    h = hashlib.sha256()
    for ident in sorted(seen):
        h.update(f"{ident}\0{seen[ident][1]}\n".encode())
    return h.hexdigest()


def _stored_digests(ids: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for i in range(0, len(ids), 1000):
        rows = db.session.execute(
            select(Advisory.id, Advisory.digest).where(Advisory.id.in_(ids[i : i + 1000]))
        )
        out.update({ident: digest for ident, digest in rows})
    return out


def import_path(path: Path) -> ImportResult:
    """Read and check everything first, then write what changed (a second read of the
    records): the caller's transaction holds the whole import, so a failure leaves the
    database as it was. Records already known with the same content are left alone; records
    not in this import stay (imports add to the database, as OSV exports are per ecosystem)."""
    result = ImportResult()
    seen = _scan(path, result)
    result.advisories = len(seen)
    digest = _content_digest(seen)
    latest = current_version()
    known = _stored_digests(sorted(seen))
    changed = {ident for ident, (_, d) in seen.items() if known.get(ident) != d}
    if not changed:
        result.unchanged = True
        result.version = latest.id if latest else None
        return result
    version = VulnDatabaseVersion(source=str(path)[:255], content_digest=digest)
    db.session.add(version)
    db.session.flush()
    # Reports of older versions are never read again.
    db.session.execute(delete(VulnReport).where(VulnReport.version_id != version.id))
    for _name, data in read_records(path, ImportResult()):
        try:
            record = osv.parse(data)
        except osv.RecordRejected:
            continue  # reported by the first pass
        if record.id not in changed or seen[record.id][1] != record.digest:
            continue
        changed.discard(record.id)
        if record.id in known:
            result.updated += 1
            _drop(record.id)
        else:
            result.added += 1
        _store(record, version.id)
    version.advisories, version.added = len(seen), result.added
    version.updated, version.skipped = result.updated, result.skipped
    db.session.flush()
    result.version = version.id
    return result


def _drop(ident: str) -> None:
    db.session.execute(delete(AffectedPackage).where(AffectedPackage.advisory_id == ident))
    db.session.execute(delete(Advisory).where(Advisory.id == ident))


def _store(record: osv.Record, version_id: int) -> None:
    db.session.add(
        Advisory(
            id=record.id,
            modified=record.modified,
            digest=record.digest,
            summary=record.summary,
            details=record.details,
            aliases=record.aliases,
            score=record.score,
            vector=record.vector,
            label=record.label,
            references=record.references,
            withdrawn=record.withdrawn,
            version_id=version_id,
        )
    )
    db.session.flush()
    for a in record.affected:
        db.session.add(
            AffectedPackage(
                advisory_id=record.id,
                ecosystem=a.ecosystem,
                ecosystem_full=a.ecosystem_full,
                name=a.name,
                ranges=a.ranges,
                versions=a.versions,
            )
        )
