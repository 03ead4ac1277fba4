"""The legacy upload form, parsed as it streams: the file goes to disk while it is hashed.

werkzeug's own form parser keeps files under 500 KB in memory and every field in a dict with no
total bound; here the file part streams to a spool file, in chunks, through three hashers at once,
and the other fields are bounded one by one and together.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO

from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.http import parse_options_header
from werkzeug.sansio.multipart import NEED_DATA, Data, Epilogue, Field, File, MultipartDecoder

from app.pypi.errors import PyPIError, bad_request

CHUNK = 256 * 1024
MAX_FIELDS_BYTES = 8 * 1024 * 1024
MAX_PARTS = 10_000


@dataclass
class UploadForm:
    fields: dict[str, list[str]] = field(default_factory=dict)
    filename: str | None = None
    size: int = 0
    sha256: str = ""
    blake2_256: str = ""
    md5: str = ""

    def get(self, key: str) -> str:
        """The first value of a field, stripped; "" when absent (clients send empty fields too)."""
        values = self.fields.get(key) or [""]
        return values[0].strip()

    def getlist(self, key: str) -> list[str]:
        return [v for v in self.fields.get(key, []) if v.strip()]


def _boundary(content_type: str | None) -> bytes:
    mimetype, options = parse_options_header(content_type or "")
    boundary = options.get("boundary", "")
    if mimetype != "multipart/form-data" or not boundary:
        raise bad_request("Invalid request: the upload must be multipart/form-data")
    if len(boundary) > 200:
        raise bad_request("Invalid request: multipart boundary too long")
    return boundary.encode("latin-1")


def read_upload(
    read: Callable[[int], bytes], content_type: str | None, spool: BinaryIO, max_file: int
) -> UploadForm:
    """Parse the form from `read`, writing the `content` file to `spool` (left at its end)."""
    decoder = MultipartDecoder(_boundary(content_type), max_parts=MAX_PARTS)
    form = UploadForm()
    sha256, blake2, md5 = (
        hashlib.sha256(),
        hashlib.blake2b(digest_size=32),
        hashlib.md5(usedforsecurity=False),
    )
    field_bytes = 0
    current: str | None = None  # "content", a field name, or "" for a part we discard
    value = bytearray()
    done = False
    try:
        while not done:
            chunk = read(CHUNK)
            decoder.receive_data(chunk or None)
            while True:
                event = decoder.next_event()
                if event is NEED_DATA:
                    break
                if isinstance(event, File) and event.name == "content":
                    if form.filename is not None:
                        raise bad_request("Invalid request: more than one content file")
                    form.filename = event.filename
                    current = "content"
                elif isinstance(event, File):
                    current = ""  # gpg signatures and other files PyPI no longer accepts
                elif isinstance(event, Field):
                    current = event.name
                    value.clear()
                elif isinstance(event, Data):
                    if current == "content":
                        form.size += len(event.data)
                        if form.size > max_file:
                            raise PyPIError(
                                413, f"File too large. Limit is {max_file // (1024 * 1024)} MiB."
                            )
                        spool.write(event.data)
                        sha256.update(event.data)
                        blake2.update(event.data)
                        md5.update(event.data)
                    elif current:
                        field_bytes += len(event.data)
                        if field_bytes > MAX_FIELDS_BYTES:
                            raise PyPIError(413, "Invalid request: form fields too large")
                        value += event.data
                        if not event.more_data:
                            form.fields.setdefault(current, []).append(_text(current, value))
                elif isinstance(event, Epilogue):
                    done = True
                    break
            if not chunk and not done:
                raise bad_request("Invalid request: the multipart body ends early")
    except ValueError as exc:
        raise bad_request(f"Invalid request: malformed multipart body ({exc})") from None
    except RequestEntityTooLarge:
        raise PyPIError(413, "Invalid request: too many form parts") from None
    form.sha256, form.blake2_256, form.md5 = sha256.hexdigest(), blake2.hexdigest(), md5.hexdigest()
    return form


def _text(name: str, value: bytearray) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise bad_request(f"Invalid value for {name}: not UTF-8") from None
