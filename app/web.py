"""HTTP pieces every blueprint serving blobs or answering errors needs alike."""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote

from flask import Flask, Response, current_app, jsonify, request, send_file
from werkzeug.datastructures import Headers

from app import limits
from app.access import audit
from app.digests import CHUNK
from app.errors import (
    Conflict,
    CoreError,
    Denied,
    Invalid,
    NotFound,
    TooLarge,
    TooManyRequests,
    Unauthenticated,
    Unavailable,
)
from app.models import db
from app.registry.errors import MESSAGES, RegistryError
from app.storage import BlobStore

# The one Basic challenge: the PyPI API, the management API and the console all answer it.
BASIC_REALM = "Cargohold"
BASIC_CHALLENGE = f'Basic realm="{BASIC_REALM}"'

# Pieces a blob is sent in when it is not handed to sendfile. Under the 1 MiB from which glibc
# maps each allocation on its own (gunicorn.conf.py), so a piece's buffer comes from the heap
# again instead of fresh pages faulted in: 0.47 CPU seconds per GiB sent against 0.68 for 1 MiB.
SEND_PIECE = 256 * 1024
# How much of an unread request body an error answer still reads before replying.
DRAIN_LIMIT = 64 * 1024 * 1024


def drain_request_body() -> None:
    """Read what the client is still sending (up to a bound) before answering an error, so it
    sees the answer rather than a reset, and a keep-alive connection stays usable: clients
    retry a 401 with a token, or a 503, only if they can read it."""
    stream, drained = request.stream, 0
    while drained < DRAIN_LIMIT and (chunk := stream.read(CHUNK)):
        drained += len(chunk)


def json_limit() -> int:
    return current_app.extensions["cargohold.settings"].max_json_bytes


def refuse_large_body() -> None:
    """limits.TooLarge when the request announces a body over the JSON limit, before a byte is
    read; a body without a length is bounded where it is read (read_json_body, form parsing)."""
    announced, limit = request.content_length, json_limit()
    if announced is not None and announced > limit:
        raise limits.TooLarge(f"the body is {announced} bytes; at most {limit} are accepted here")


def read_json_body():
    """The request's JSON, read against the JSON body limit (never the whole stream first) and
    parsed with bounded depth and numbers: limits.TooLarge or limits.InputRejected otherwise.
    An empty body is None."""
    body = limits.read_bounded(request.stream.read, json_limit(), request.content_length)
    return limits.loads(body) if body.strip() else None


def send_blob(
    store: BlobStore,
    digest: str,
    size: int,
    cache_control: str,
    headers: dict[str, str] | None = None,
    filename: str | None = None,
    redirect: bool = True,
) -> Response:
    """A stored blob as a response: HEAD answered here, GET redirected when the store offers a
    URL (unless `redirect` is False), sent with sendfile from a local file when the store sends
    that way, or streamed a piece at a time; Range and If-None-Match answered in every case.
    `size` is the blob's size, known to exist."""
    base = {**(headers or {}), "Cache-Control": cache_control}
    path = store.local_path(digest)
    if path is not None and request.method != "HEAD":
        return _sent_with_sendfile(path, digest, filename, base)
    etag = '"' + digest + '"'
    headers = {
        **base,
        "ETag": etag,
        "Content-Type": "application/octet-stream",
        "Content-Length": str(size),
        "Accept-Ranges": "bytes",
    }
    if filename:
        headers["Content-Disposition"] = _disposition(filename)
    # Answered here even when GETs redirect: a presigned URL is signed for GET only.
    if request.method == "HEAD":
        return Response(status=200, headers=headers)
    if redirect and (url := store.redirect_url(digest)):
        return Response(status=307, headers={**base, "Location": url})
    if request.if_none_match.contains_weak(digest):
        return Response(status=304, headers={**base, "ETag": etag})
    start, length, status = 0, size, 200
    wanted, if_range = request.range, request.if_range
    # One range (several are answered whole, as RFC 9110 allows), unless If-Range names other
    # content; an empty blob has no range to give.
    if (
        size
        and wanted is not None
        and wanted.units == "bytes"
        and len(wanted.ranges) == 1
        and if_range.etag in (None, digest)
    ):
        bounds = _range_bounds(wanted.ranges[0], size)
        if bounds is None:
            return Response(status=416, headers={"Content-Range": f"bytes */{size}"})
        start, length, status = bounds[0], bounds[1] - bounds[0], 206
        headers["Content-Range"] = f"bytes {start}-{bounds[1] - 1}/{size}"
        headers["Content-Length"] = str(length)
    try:
        blob = store.open(digest, start)
    except FileNotFoundError:
        raise _collected(digest) from None
    resp = Response(_pieces(blob, length), status=status, headers=headers)
    resp.call_on_close(blob.close)  # also when the body is never iterated
    return resp


def _sent_with_sendfile(path: Path, digest: str, filename: str | None, base: dict) -> Response:
    # send_file hands the open file to wsgi.file_wrapper (sendfile under gunicorn) and answers
    # Range and If-None-Match itself.
    try:
        resp = send_file(
            path,
            mimetype="application/octet-stream",
            download_name=filename,
            conditional=True,
            etag=digest,
            max_age=None,
        )
    except FileNotFoundError:
        raise _collected(digest) from None
    resp.headers.update(base)
    return resp


def _collected(digest: str) -> NotFound:
    # Deleted by the collector between the caller's check and the read: as gone as it would be
    # a moment later.
    return NotFound(f"blob {digest} is no longer stored")


def _range_bounds(wanted: tuple[int, int | None], size: int) -> tuple[int, int] | None:
    """A byte range as (first byte, end past the last), or None when no byte of the blob is in
    it. A suffix longer than the blob is the whole blob (RFC 9110, 14.1.2)."""
    start, end = wanted
    if start < 0:
        return max(size + start, 0), size
    end = size if end is None else min(end, size)
    return (start, end) if start < end else None


def _pieces(blob: BinaryIO, length: int) -> Iterator[bytes]:
    """The first `length` bytes of `blob`, a piece at a time (the response closes it)."""
    left = length
    while left and (data := blob.read(min(SEND_PIECE, left))):
        left -= len(data)
        yield data


def _disposition(filename: str) -> str:
    """Content-Disposition naming the file: quoted as the header's grammar wants, and with an
    RFC 8187 UTF-8 name beside an ASCII one when the name is not ASCII."""
    headers = Headers()
    if filename.isascii():
        headers.set("Content-Disposition", "inline", filename=filename)
    else:
        ascii_name = unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode()
        utf8_name = "UTF-8''" + quote(filename, safe="!#$&+^`|~")
        headers.set(
            "Content-Disposition", "inline", filename=ascii_name, **{"filename*": utf8_name}
        )
    return headers["Content-Disposition"]


# ---- the unit of work -----------------------------------------------------------------------


def unit_of_work_per_request(app: Flask) -> None:
    """Every view is one transaction: committed when the view returns its response (before a
    streamed body is sent, so nothing is held open while a client reads), with the request's
    successful logins (`audit.write_logins`), rolled back when it raises, whatever the error.
    A commit that fails is an error of the view, so the blueprint's mapper answers it (an
    outage is a 503). Handlers commit early only where a record must outlive the refusal that
    follows (failed-login counts, an upload cancelled on a digest mismatch) or before a
    client streams a body (no write lock held while it sends): those places say so."""
    for endpoint, view in list(app.view_functions.items()):
        app.view_functions[endpoint] = _transactional(view)


def _transactional(view):
    @functools.wraps(view)
    def run(*args, **kwargs):
        try:
            response = view(*args, **kwargs)
            audit.write_logins()
            db.session.commit()
        except BaseException:
            db.session.rollback()
            raise
        return response

    return run


# ---- errors in the registry protocols' format (OCI distribution and the token service) -------

# The distribution spec's code for each kind of core error.
DISTRIBUTION_CODES: dict[type[CoreError], str] = {
    Invalid: "UNSUPPORTED",
    NotFound: "NAME_UNKNOWN",
    Conflict: "UNSUPPORTED",
    TooLarge: "SIZE_INVALID",
    Unauthenticated: "UNAUTHORIZED",
    Denied: "DENIED",
    TooManyRequests: "TOOMANYREQUESTS",
    Unavailable: "UNAVAILABLE",
}


def bearer_challenge(scope: str | None = None, error: str | None = None) -> str:
    """Where to get a token, and (when known) the scope it must name."""
    settings = current_app.extensions["cargohold.settings"]
    base = settings.public_url or request.host_url.rstrip("/")
    parts = [f'realm="{base}/auth/token"', f'service="{settings.service}"']
    if scope:
        parts.append(f'scope="{scope}"')
    if error:
        parts.append(f'error="{error}"')
    return "Bearer " + ",".join(parts)


def distribution_error(exc: CoreError) -> Response:
    """A core error as the distribution spec's JSON error body, with a Bearer challenge on 401."""
    drain_request_body()
    if isinstance(exc, RegistryError):
        body = exc.body()
    else:
        code = next(
            (c for kind, c in DISTRIBUTION_CODES.items() if isinstance(exc, kind)), "UNSUPPORTED"
        )
        body = {"errors": [{"code": code, "message": MESSAGES[code], "detail": exc.message}]}
    resp = jsonify(body)
    resp.status_code = exc.status
    resp.headers.update({k: v for k, v in exc.headers.items() if v})
    if isinstance(exc, Unauthenticated):
        resp.headers["WWW-Authenticate"] = bearer_challenge(exc.scope, exc.error)
    return resp
