"""Distribution files, read defensively: names, archive sanity, and the core metadata inside.

Everything here works on an already-spooled file object and trusts nothing in it: member names
may climb out of the archive, declared sizes may lie, and a few hundred kilobytes may inflate to
gigabytes. Every refusal raises a PyPIError whose message says what was wrong.
"""

from __future__ import annotations

import gzip
import posixpath
import re
import struct
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from typing import BinaryIO

from packaging.metadata import RawMetadata, parse_email
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from app.pypi.errors import bad_request
from app.registry.python.files import MAX_METADATA
from app.registry.python.names import is_valid

WHEEL = "bdist_wheel"
SDIST = "sdist"
FILETYPES = (WHEEL, SDIST)
# "1.0 to 2.5": 2.0 was never a standard, but setuptools wrote it for years and PyPI accepts it.
METADATA_VERSIONS = ("1.0", "1.1", "1.2", "2.0", "2.1", "2.2", "2.3", "2.4", "2.5")

MAX_FILENAME = 255
MAX_MEMBERS = 100_000
# PyPI's zip-bomb rule: more than 64 MiB unpacked at a ratio above 50 is refused.
BOMB_MIN_SIZE = 64 * 1024 * 1024
BOMB_RATIO = 50
MAX_UNPACKED = 8 * 1024 * 1024 * 1024
# Archive metadata is read whole by tarfile and zipfile, so its size is checked first: a GNU
# long name or pax header of a few hundred MiB costs only kilobytes of gzip.
MAX_TAR_HEADER_DATA = 64 * 1024
MAX_TAR_HEADERS_PER_MEMBER = 8
MAX_ZIP_CENTRAL_DIRECTORY = 16 * 1024 * 1024
ZIP_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class DistFilename:
    filename: str
    filetype: str
    project: str  # normalized
    version: Version


@dataclass(frozen=True)
class CoreMetadata:
    raw: RawMetadata
    metadata_version: str
    name: str
    version: Version
    requires_python: str | None


def parse_filename(filename: str) -> DistFilename:
    if (
        not filename
        or len(filename) > MAX_FILENAME
        or re.search(r"[/\\\x00-\x1f\x7f]", filename)
        or filename.startswith(".")
    ):
        raise bad_request(f"Invalid distribution filename {filename!r}")
    try:
        if filename.endswith(".whl"):
            name, version, _build, _tags = parse_wheel_filename(filename)
            return DistFilename(filename, WHEEL, name, version)
        if filename.endswith(".tar.gz"):
            name, version = parse_sdist_filename(filename)
            return DistFilename(filename, SDIST, name, version)
    except InvalidWheelFilename as exc:
        raise bad_request(f"Invalid wheel filename (PEP 427): {exc}") from None
    except InvalidSdistFilename as exc:
        raise bad_request(f"Invalid source distribution filename (PEP 625): {exc}") from None
    raise bad_request(
        f"Invalid file extension in {filename!r}: use .whl for wheels and .tar.gz for "
        "source distributions (PEP 427, PEP 625)"
    )


def _unsafe_member(name: str) -> bool:
    if not name or "\x00" in name or name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        return True
    return ".." in re.split(r"[/\\]", name)


def _bomb_check(unpacked: int, packed: int) -> None:
    if unpacked > MAX_UNPACKED or (
        unpacked > BOMB_MIN_SIZE and unpacked > BOMB_RATIO * max(packed, 1)
    ):
        raise bad_request("Invalid distribution file: file is a compression bomb")


def _split_name_version(stem: str) -> tuple[str, str] | None:
    name, sep, version = stem.rpartition("-")
    return (name, version) if sep and name and version else None


def _matches(stem: str, dist: DistFilename) -> bool:
    parts = _split_name_version(stem)
    if parts is None:
        return False
    try:
        return canonicalize_name(parts[0]) == dist.project and Version(parts[1]) == dist.version
    except InvalidVersion:
        return False


def wheel_metadata(f: BinaryIO, size: int, dist: DistFilename) -> bytes:
    """Check a wheel through and through; return its `.dist-info/METADATA`."""
    f.seek(0)
    if not zipfile.is_zipfile(f):
        raise bad_request(f"Invalid distribution file: {dist.filename} is not a zip archive")
    try:
        _check_central_directory(f)
        with zipfile.ZipFile(f) as zf:
            infos = zf.infolist()
            _check_zip_members(infos, size)
            metadata_info = _find_dist_info(zf, infos, dist)
            # Decompress everything once: CRCs catch corruption, and zipfile never yields more
            # than a member's declared size, which _check_zip_members has already bounded.
            for info in infos:
                with zf.open(info) as member:
                    while member.read(_CHUNK):
                        pass
            with zf.open(metadata_info) as member:
                data = member.read(MAX_METADATA + 1)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, OSError) as exc:
        raise bad_request(f"Invalid distribution file: corrupt zip archive ({exc})") from None
    if len(data) > MAX_METADATA:
        raise bad_request("Invalid distribution file: METADATA is too large")
    return data


def _check_central_directory(f: BinaryIO) -> None:
    """Count the central directory's entries before zipfile builds an object for each: its
    declared size is bounded, then entries are walked a chunk at a time."""
    f.seek(0)
    end = zipfile._EndRecData(f)  # the end record, zip64 included, as ZipFile itself finds it
    if end is None:
        raise zipfile.BadZipFile("no end of central directory record")
    size_cd = end[zipfile._ECD_SIZE]
    location = end[zipfile._ECD_LOCATION]
    if end[zipfile._ECD_SIGNATURE] == zipfile.stringEndArchive64:
        location -= zipfile.sizeEndCentDir64 + zipfile.sizeEndCentDir64Locator
    if size_cd > MAX_ZIP_CENTRAL_DIRECTORY:
        raise bad_request("Invalid distribution file: the zip central directory is too large")
    start = location - size_cd
    if start < 0:
        raise zipfile.BadZipFile("central directory starts before the file")
    f.seek(start)
    directory = f.read(size_cd)  # bounded just above
    pos = entries = 0
    while pos + 46 <= len(directory):
        if directory[pos : pos + 4] != zipfile.stringCentralDir:
            break  # zipfile reports the damage
        entries += 1
        if entries > MAX_MEMBERS:
            raise bad_request("Invalid distribution file: too many archive members")
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", directory, pos + 28)
        pos += 46 + name_len + extra_len + comment_len
    f.seek(0)


def _check_zip_members(infos: list[zipfile.ZipInfo], size: int) -> None:
    if len(infos) > MAX_MEMBERS:
        raise bad_request("Invalid distribution file: too many archive members")
    seen: set[str] = set()
    for info in infos:
        if _unsafe_member(info.filename):
            raise bad_request(f"Invalid distribution file: unsafe member path {info.filename!r}")
        if info.filename in seen:
            raise bad_request(f"Invalid distribution file: duplicate member {info.filename!r}")
        seen.add(info.filename)
        if info.compress_type not in ZIP_METHODS:
            raise bad_request("Invalid distribution file: unsupported zip compression method")
    # Members whose data overlap are how small zips expand to petabytes without any high
    # compression ratio, so each member's data must end before the next one's header begins.
    ordered = sorted(infos, key=lambda i: i.header_offset)
    for cur, nxt in zip(ordered, ordered[1:], strict=False):
        if cur.header_offset + 30 + len(cur.filename) + cur.compress_size > nxt.header_offset:
            raise bad_request("Invalid distribution file: overlapping zip members (zip bomb)")
    _bomb_check(sum(i.file_size for i in infos), size)


def _find_dist_info(zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo], dist: DistFilename):
    names = {i.filename for i in infos}
    dirs = {
        n.split("/", 1)[0][: -len(".dist-info")]
        for n in names
        if "/" in n and n.split("/", 1)[0].endswith(".dist-info")
    }
    matching = [d for d in dirs if _matches(d, dist)]
    if len(dirs) != 1 or len(matching) != 1:
        raise bad_request(
            f"Invalid distribution file: a wheel must hold exactly one .dist-info directory "
            f"named for {dist.project} {dist.version}"
        )
    stem = matching[0]
    for required in ("METADATA", "WHEEL"):
        if f"{stem}.dist-info/{required}" not in names:
            raise bad_request(
                f"Wheel {dist.filename!r} does not contain the required {required} file: "
                f"{stem}.dist-info/{required}"
            )
    return zf.getinfo(f"{stem}.dist-info/METADATA")


class _CountingReader:
    """Counts compressed bytes consumed, so the gzip ratio can be watched as it inflates."""

    def __init__(self, f: BinaryIO):
        self.f = f
        self.count = 0

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n)
        self.count += len(data)
        return data


class _BoundedTarInfo(tarfile.TarInfo):
    """A TarInfo that checks what an extended header declares before tarfile reads it whole
    (GNU long names and links, pax headers), allows a few of them per member, and refuses
    sparse members, whose maps tarfile reads without any bound."""

    def _extended_header(self, tf: tarfile.TarFile) -> None:
        if self.size > MAX_TAR_HEADER_DATA:
            raise bad_request(
                f"Invalid distribution file: an extended tar header declares {self.size} bytes "
                f"(at most {MAX_TAR_HEADER_DATA})"
            )
        count = getattr(tf, "extended_headers", 0) + 1
        if count > MAX_TAR_HEADERS_PER_MEMBER:
            raise bad_request("Invalid distribution file: too many extended tar headers")
        tf.extended_headers = count  # type: ignore[attr-defined]

    def _proc_gnulong(self, tarfile):
        self._extended_header(tarfile)
        return super()._proc_gnulong(tarfile)

    def _proc_pax(self, tarfile):
        self._extended_header(tarfile)
        return super()._proc_pax(tarfile)

    def _refuse_sparse(self, *_args):
        raise bad_request("Invalid distribution file: sparse tar members are not accepted")

    _proc_sparse = _proc_gnusparse_00 = _proc_gnusparse_01 = _proc_gnusparse_10 = _refuse_sparse


def sdist_metadata(f: BinaryIO, size: int, dist: DistFilename) -> bytes:
    """Check a .tar.gz sdist member by member; return its top-level PKG-INFO."""
    f.seek(0)
    if f.read(2) != b"\x1f\x8b":
        raise bad_request(f"Invalid distribution file: {dist.filename} is not gzip-compressed")
    f.seek(0)
    reader = _CountingReader(f)
    found: dict[str, bytes] = {}
    tops: set[str] = set()
    members = 0
    try:
        # gzip, not tarfile's "r|gz", inflates: it never returns more than was asked for, where
        # tarfile inflates each compressed record whole (10 KiB of zeros become 10 MiB).
        with (
            gzip.GzipFile(fileobj=reader, mode="rb") as inflated,
            tarfile.open(  # type: ignore[call-overload]
                fileobj=inflated, mode="r|", tarinfo=_BoundedTarInfo
            ) as tf,
        ):
            for member in tf:
                tf.extended_headers = 0  # type: ignore[attr-defined]
                tf.members = []  # the loop keeps what it needs; tarfile need not keep them all
                members += 1
                if members > MAX_MEMBERS:
                    raise bad_request("Invalid distribution file: too many archive members")
                _check_tar_member(member)
                # tf.offset is the position in the inflated stream: the work done so far.
                _bomb_check(tf.offset + member.size, size)
                tops.add(member.name.split("/", 1)[0])
                parts = member.name.split("/")
                if len(parts) == 2 and parts[1] == "PKG-INFO" and member.isfile():
                    if member.size > MAX_METADATA:
                        raise bad_request("Invalid distribution file: PKG-INFO is too large")
                    extracted = tf.extractfile(member)
                    found[parts[0]] = extracted.read() if extracted else b""
    except (tarfile.TarError, zlib.error, EOFError, OSError, RecursionError, ValueError) as exc:
        raise bad_request(f"Invalid distribution file: corrupt tar.gz archive ({exc})") from None
    matching = [d for d in found if _matches(d, dist)]
    if not matching:
        raise bad_request(
            f"Invalid distribution file: {dist.filename} has no PKG-INFO in a top-level "
            f"directory named for {dist.project} {dist.version}"
        )
    if len(tops) != 1:
        raise bad_request("Invalid distribution file: an sdist must hold one top-level directory")
    return found[matching[0]]


def _check_tar_member(member: tarfile.TarInfo) -> None:
    name = member.name
    if _unsafe_member(name):
        raise bad_request(f"Invalid distribution file: unsafe member path {name!r}")
    if member.isdev() or member.issparse():
        raise bad_request(f"Invalid distribution file: special member {name!r}")
    if member.issym() or member.islnk():
        base = posixpath.dirname(name) if member.issym() else ""
        target = posixpath.normpath(posixpath.join(base, member.linkname))
        if member.linkname.startswith("/") or target == ".." or target.startswith("../"):
            raise bad_request(
                f"Invalid distribution file: link {name!r} points outside the archive"
            )


def parse_metadata(data: bytes, where: str) -> CoreMetadata:
    raw, unparsed = parse_email(data)
    for key in ("metadata-version", "name", "version", "requires-python"):
        if key in unparsed:
            raise bad_request(f"Invalid {where}: malformed or repeated {key.title()} field")
    mv = (raw.get("metadata_version") or "").strip()
    if mv not in METADATA_VERSIONS:
        raise bad_request(
            f"Invalid {where}: unsupported Metadata-Version {mv!r} (1.0 to 2.5 are accepted)"
        )
    name = (raw.get("name") or "").strip()
    if not is_valid(name):
        raise bad_request(f"Invalid {where}: {name!r} is an invalid value for Name")
    try:
        version = Version(raw.get("version") or "")
    except InvalidVersion:
        raise bad_request(
            f"Invalid {where}: {raw.get('version')!r} is an invalid value for Version"
        ) from None
    requires_python = (raw.get("requires_python") or "").strip() or None
    if requires_python is not None:
        try:
            SpecifierSet(requires_python)
        except InvalidSpecifier:
            raise bad_request(
                f"Invalid {where}: {requires_python!r} is an invalid value for Requires-Python"
            ) from None
    return CoreMetadata(raw, mv, name, version, requires_python)
