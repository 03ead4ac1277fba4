"""Version orderings and the OSV range evaluation.

PyPI versions compare with `packaging.version` (PEP 440); SEMVER ranges, and the ECOSYSTEM
ranges of ecosystems whose versions are semantic versions (npm, crates.io, Go), with SemVer 2.0
precedence; Debian with dpkg's ordering; RubyGems as Gem::Version; NuGet as NuGet.Versioning;
Alpine as apk. Elsewhere only a record's explicit `versions` list matches: a range we cannot
order is never guessed at.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cmp_to_key

from packaging.version import InvalidVersion, Version

Key = Callable[[str], object]

_SEMVER = re.compile(
    r"^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z.-]+)?$"
)
MAX_VERSION = 256


class Unordered(ValueError):
    """A version the ordering cannot place."""


def _pypi(value: str):
    try:
        return Version(value)
    except InvalidVersion:
        raise Unordered(value) from None


class _Prerelease:
    """SemVer 2.0 section 11: numeric identifiers sort numerically and below alphanumeric
    ones; a shorter list of equal identifiers sorts first; no pre-release sorts last."""

    def __init__(self, parts: tuple[str, ...] | None):
        self.parts = parts

    def _cmp(self, other: _Prerelease) -> int:
        if self.parts == other.parts:
            return 0
        if self.parts is None:
            return 1
        if other.parts is None:
            return -1
        for a, b in zip(self.parts, other.parts, strict=False):
            if a == b:
                continue
            if a.isdigit() and b.isdigit():
                return -1 if int(a) < int(b) else 1
            if a.isdigit() != b.isdigit():
                return -1 if a.isdigit() else 1
            return -1 if a < b else 1
        return -1 if len(self.parts) < len(other.parts) else 1

    def __lt__(self, other: _Prerelease) -> bool:
        return self._cmp(other) < 0

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Prerelease) and self._cmp(other) == 0

    __hash__ = None  # type: ignore[assignment]


def _semver(value: str):
    m = _SEMVER.match(value)
    if not m:
        raise Unordered(value)
    pre = tuple(m[4].split(".")) if m[4] else None
    return (int(m[1]), int(m[2]), int(m[3]), _Prerelease(pre))


_GEM = re.compile(r"^[0-9]+(?:\.[0-9a-zA-Z]+)*(?:-[0-9A-Za-z.-]+)?$")
_GEM_PART = re.compile(r"[0-9]+|[a-zA-Z]+")


class _GemSegment:
    """Gem::Version ordering of one segment: numbers compare numerically and above strings
    (a string segment makes a pre-release); strings compare as strings."""

    def __init__(self, value: str):
        self.value = int(value) if value.isdigit() else value

    def _cmp(self, other: _GemSegment) -> int:
        a, b = self.value, other.value
        if type(a) is not type(b):
            return 1 if isinstance(a, int) else -1
        return (a > b) - (a < b)

    def __lt__(self, other: _GemSegment) -> bool:
        return self._cmp(other) < 0

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _GemSegment) and self._cmp(other) == 0

    __hash__ = None  # type: ignore[assignment]


def _gem(value: str):
    if not _GEM.match(value):
        raise Unordered(value)
    # "1.0-rc1" is "1.0.pre.rc1"; trailing zero segments do not count ("1.0" == "1").
    parts = _GEM_PART.findall(value.replace("-", ".pre."))
    while len(parts) > 1 and parts[-1].isdigit() and int(parts[-1]) == 0:
        parts.pop()
    return _GemList([_GemSegment(p) for p in parts])


class _GemList(list):
    """Segment lists, padded with zeros where one is shorter (so 1.0.a < 1.0 < 1.0.1)."""

    def _cmp(self, other: _GemList) -> int:
        zero = _GemSegment("0")
        for i in range(max(len(self), len(other))):
            a = self[i] if i < len(self) else zero
            b = other[i] if i < len(other) else zero
            if a != b:
                return -1 if a < b else 1
        return 0

    def __lt__(self, other):  # type: ignore[override]
        return self._cmp(other) < 0

    def __eq__(self, other):  # type: ignore[override]
        return isinstance(other, _GemList) and self._cmp(other) == 0

    __hash__ = None  # type: ignore[assignment]


_NUGET = re.compile(
    r"^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:\.(\d+))?(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
    r"(?:\+[0-9A-Za-z.-]+)?$"
)


def _nuget(value: str):
    """NuGet: up to four numeric parts (missing ones are 0), then SemVer 2.0 pre-release
    precedence, case-insensitive."""
    m = _NUGET.match(value)
    if not m:
        raise Unordered(value)
    numbers = tuple(int(m[i] or 0) for i in range(1, 5))
    pre = tuple(m[5].lower().split(".")) if m[5] else None
    return (*numbers, _Prerelease(pre))


_APK = re.compile(
    r"^(\d+(?:\.\d+)*)([a-z]?)((?:_(?:alpha|beta|pre|rc|cvs|svn|git|hg|p)\d*)*)"
    r"(?:~[0-9a-f]+)?(?:-r(\d+))?$"
)
# apk's suffix order: pre-release suffixes before no suffix, the others after it.
_APK_SUFFIX = {"alpha": -4, "beta": -3, "pre": -2, "rc": -1, "cvs": 1, "svn": 2, "git": 3}
_APK_SUFFIX |= {"hg": 4, "p": 5}
_APK_SUFFIX_PART = re.compile(r"_([a-z]+)(\d*)")


def _apk(value: str):
    """Alpine's apk ordering for the versions its packages use: numeric parts, an optional
    letter, suffixes (_alpha < _beta < _pre < _rc < none < _p ...), then the -rN release."""
    m = _APK.match(value)
    if not m:
        raise Unordered(value)
    numbers = tuple(int(n) for n in m[1].split("."))
    suffixes = tuple(
        (_APK_SUFFIX[name], int(num or 0)) for name, num in _APK_SUFFIX_PART.findall(m[3])
    ) or ((0, 0),)
    return (numbers, m[2], suffixes, int(m[4] or 0))


def _dpkg_order(c: str) -> int:
    if c == "~":
        return -1
    if c.isalpha():
        return ord(c)
    return ord(c) + 256


def _dpkg_part(a: str, b: str) -> int:
    """dpkg's verrevcmp: alternate non-digit runs (letters before the rest, ~ before all,
    even the end) and digit runs compared as numbers."""
    i = j = 0
    while i < len(a) or j < len(b):
        first_diff = 0
        while (i < len(a) and not a[i].isdigit()) or (j < len(b) and not b[j].isdigit()):
            ac = _dpkg_order(a[i]) if i < len(a) and not a[i].isdigit() else 0
            bc = _dpkg_order(b[j]) if j < len(b) and not b[j].isdigit() else 0
            if ac != bc:
                return ac - bc
            i += 1
            j += 1
        while i < len(a) and a[i] == "0":
            i += 1
        while j < len(b) and b[j] == "0":
            j += 1
        while i < len(a) and a[i].isdigit() and j < len(b) and b[j].isdigit():
            if not first_diff:
                first_diff = ord(a[i]) - ord(b[j])
            i += 1
            j += 1
        if i < len(a) and a[i].isdigit():
            return 1
        if j < len(b) and b[j].isdigit():
            return -1
        if first_diff:
            return first_diff
    return 0


_DPKG = re.compile(r"^(?:(\d+):)?([0-9][A-Za-z0-9.+~:-]*?)(?:-([A-Za-z0-9.+~]+))?$")


def _dpkg_split(value: str) -> tuple[int, str, str]:
    m = _DPKG.match(value)
    if not m:
        raise Unordered(value)
    return int(m[1] or 0), m[2], m[3] or ""


def _dpkg_cmp(a: str, b: str) -> int:
    ea, ua, ra = _dpkg_split(a)
    eb, ub, rb = _dpkg_split(b)
    if ea != eb:
        return ea - eb
    return _dpkg_part(ua, ub) or _dpkg_part(ra, rb)


def _dpkg(value: str):
    _dpkg_split(value)
    return cmp_to_key(_dpkg_cmp)(value)


# OSV ecosystem (lower-cased, release suffix removed) -> the ordering of its ECOSYSTEM ranges.
ECOSYSTEM_ORDER: dict[str, Key] = {
    "pypi": _pypi,
    "npm": _semver,
    "crates.io": _semver,
    "go": _semver,
    "debian": _dpkg,
    "ubuntu": _dpkg,
    "rubygems": _gem,
    "nuget": _nuget,
    "alpine": _apk,
}


def ordering(range_type: str, ecosystem: str) -> Key | None:
    if range_type == "SEMVER":
        return _pypi if ecosystem == "pypi" else _semver
    if range_type == "ECOSYSTEM":
        return ECOSYSTEM_ORDER.get(ecosystem)
    return None  # GIT: commits, which a package version never names


def _same(version: str, listed: str, ecosystem: str) -> bool:
    if version == listed:
        return True
    if ecosystem == "pypi":
        try:
            return Version(version) == Version(listed)
        except InvalidVersion:
            return False
    return False


def in_versions(version: str, listed: list, ecosystem: str) -> bool:
    return any(isinstance(v, str) and _same(version, v, ecosystem) for v in listed)


def in_range(version: str, rng: dict, ecosystem: str) -> bool:
    """The OSV specification's evaluation of one range: the version is affected once at or past
    an `introduced`, until at or past a `fixed` or past a `last_affected`, and only below a
    `limit` when there is one."""
    key = ordering(str(rng.get("type", "")), ecosystem)
    events = rng.get("events")
    if key is None or not isinstance(events, list):
        return False
    try:
        v = key(version)
        limits = [key(e["limit"]) for e in events if "limit" in e and e["limit"] != "*"]
        unbounded = any(e.get("limit") == "*" for e in events)
        has_limit = any("limit" in e for e in events)
        if has_limit and not unbounded and not any(v < lim for lim in limits):
            return False
        timeline = []
        for e in events:
            ((kind, value),) = e.items()
            if kind == "limit":
                continue
            at = None if kind == "introduced" and value == "0" else key(value)
            timeline.append((at, kind))
    except (Unordered, ValueError, TypeError, AttributeError, KeyError):
        return False
    # "0" sorts before any version; at equal versions, a fix is applied after its introduction.
    ordered = sorted(timeline, key=cmp_to_key(lambda x, y: _event_cmp(x, y)))
    vulnerable = False
    for at, kind in ordered:
        if kind == "introduced" and (at is None or not v < at):
            vulnerable = True
        elif kind == "fixed" and not v < at or kind == "last_affected" and at < v:
            vulnerable = False
    return vulnerable


_KIND_ORDER = {"introduced": 0, "last_affected": 1, "fixed": 2}


def _event_cmp(x, y) -> int:
    (ax, kx), (ay, ky) = x, y
    if ax is None or ay is None:
        if ax is None and ay is None:
            return 0
        return -1 if ax is None else 1
    if ax < ay:
        return -1
    if ay < ax:
        return 1
    return _KIND_ORDER.get(kx, 3) - _KIND_ORDER.get(ky, 3)


def affects(version: str, ecosystem: str, ranges: list | None, versions: list | None) -> bool:
    if len(version) > MAX_VERSION:
        return False
    if versions and in_versions(version, versions, ecosystem):
        return True
    return any(isinstance(r, dict) and in_range(version, r, ecosystem) for r in ranges or ())
