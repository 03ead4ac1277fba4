"""Bounded parsing of attacker-supplied JSON and numbers.

Python's own parsers fail in ways that escape ordinary error handling: `json.loads` recurses once
per nesting level (a few thousand `[` raise RecursionError), and `int()` refuses strings of more
than 4,300 digits with a ValueError from deep inside the decoder. Everything that parses a
request's JSON or a number from a header or query string goes through here, so each failure is
one exception type that every blueprint maps to its protocol's error.
"""

from __future__ import annotations

import json
import re

from app.errors import Invalid

# Manifests nest a handful of levels; API bodies two or three. 64 leaves room for annotations
# holding structured values without letting a body choose the parser's stack depth.
MAX_DEPTH = 64
# Sizes and counts fit a signed 64-bit column; more digits than that is never a real value.
MAX_INT_DIGITS = 19
MAX_INT = 2**63 - 1

# The bytes the depth scan acts on: quotes and backslashes (strings) and brackets.
_SPECIAL = re.compile(rb'["\\\[\]{}]')
_QUOTE, _BACKSLASH = ord('"'), ord("\\")
_OPENERS = frozenset(b"[{")
_DIGITS = re.compile(r"[0-9]+")


class InputRejected(Invalid):
    """A value outside what the server is willing to parse; the message says why."""


class TooLarge(InputRejected):
    """A body over its limit."""

    status, code = 413, "TOO_LARGE"


def _parse_int(text: str) -> int:
    digits = text.lstrip("-")
    if len(digits) > MAX_INT_DIGITS:
        raise InputRejected(f"a number has {len(digits)} digits; at most {MAX_INT_DIGITS}")
    return int(text)


def _parse_float(text: str) -> float:
    if len(text) > 64:
        raise InputRejected(f"a number is {len(text)} characters long; at most 64")
    return float(text)


def _no_constant(name: str):
    raise InputRejected(f"{name} is not JSON")


def check_depth(data: bytes, max_depth: int = MAX_DEPTH) -> None:
    """Refuse nesting deeper than max_depth, scanning without recursion (strings skipped)."""
    # One pass, linear whatever the input (a regex over whole strings can backtrack).
    depth, in_string, skip_to = 0, False, -1
    for match in _SPECIAL.finditer(data):
        pos = match.start()
        if pos < skip_to:
            continue  # the character after a backslash
        char = data[pos]
        if in_string:
            if char == _BACKSLASH:
                skip_to = pos + 2
            elif char == _QUOTE:
                in_string = False
        elif char == _QUOTE:
            in_string = True
        elif char in _OPENERS:
            depth += 1
            if depth > max_depth:
                raise InputRejected(f"JSON nested deeper than {max_depth} levels")
        elif char != _BACKSLASH:
            depth -= 1


def loads(data: bytes | str, max_depth: int = MAX_DEPTH):
    """json.loads with bounded nesting and number sizes; every failure is InputRejected."""
    raw = data.encode() if isinstance(data, str) else data
    check_depth(raw, max_depth)
    try:
        text = raw.decode("utf-8")
        return json.loads(
            text,
            parse_int=_parse_int,
            parse_float=_parse_float,
            parse_constant=_no_constant,
        )
    except InputRejected:
        raise
    except UnicodeDecodeError:
        raise InputRejected("JSON must be UTF-8") from None
    except (ValueError, RecursionError) as exc:
        raise InputRejected(f"not valid JSON: {exc}") from None


def parse_count(value: str, what: str, maximum: int = MAX_INT) -> int:
    """A non-negative decimal integer from a header or query string: ASCII digits only (no
    "²", no sign, no spaces), at most `maximum`."""
    if not _DIGITS.fullmatch(value) or len(value) > MAX_INT_DIGITS:
        raise InputRejected(f"{what} must be a non-negative integer of at most 19 digits")
    number = int(value)
    if number > maximum:
        raise InputRejected(f"{what} must be at most {maximum}")
    return number


def read_bounded(read, limit: int, announced: int | None = None) -> bytes:
    """Read a whole body through `read(n)`, refusing it (TooLarge) once it passes `limit`
    bytes: by its Content-Length before a byte is read, or after limit + 1 bytes otherwise."""
    if announced is not None and announced > limit:
        raise TooLarge(f"the body is {announced} bytes; at most {limit} are accepted here")
    chunks, total = [], 0
    while total <= limit:
        chunk = read(min(64 * 1024, limit + 1 - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    if total > limit:
        raise TooLarge(f"the body exceeds {limit} bytes")
    return b"".join(chunks)
