"""The WSGI layer around the application: request ids, the access log and the HTTP metrics.

It counts the bytes actually sent, sendfile included: gunicorn hands a file response to
sendfile(2) without adding it to what its own access log reports, so that log says 0 for every
blob served from disk. Here a file response keeps its file wrapper (so sendfile still happens)
and the bytes are read off the file's position when the server closes it."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from app.ops import metrics
from app.ops.logs import ACCESS, request_id

# What a proxy's or client's request id may look like to be reused (AWS trace ids included).
SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:;=+/-]{0,199}$")
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Keys the application's request hooks leave in the WSGI environ for this layer.
ROUTE, USER, ORG, REPOSITORY, DIGEST = (
    f"cargohold.{k}" for k in ("route", "user", "org", "repository", "digest")
)
# Upload sessions are counted from the routes that open and close them.
UPLOAD_OUTCOMES = {
    ("oci:start_upload", 202): "started",
    ("oci:start_upload", 201): "completed",
    ("oci:put_upload", 201): "completed",
    ("oci:cancel_upload", 204): "cancelled",
}


class _CountingInput:
    """wsgi.input, counting what the application reads."""

    def __init__(self, stream: Any) -> None:
        self._stream, self.count = stream, 0

    def read(self, *args: Any) -> bytes:
        data = self._stream.read(*args)
        self.count += len(data)
        return data

    def readinto(self, target: bytearray | memoryview) -> int:
        into = getattr(self._stream, "readinto", None)
        if into is not None:
            count = into(target) or 0
        else:  # WSGI promises read() only
            data = self._stream.read(len(target))
            count = len(data)
            memoryview(target).cast("B")[:count] = data
        self.count += count
        return count

    def readline(self, *args: Any) -> bytes:
        data = self._stream.readline(*args)
        self.count += len(data)
        return data

    def readlines(self, *args: Any) -> list[bytes]:
        lines = self._stream.readlines(*args)
        self.count += sum(map(len, lines))
        return lines

    def __iter__(self) -> Iterator[bytes]:
        for line in self._stream:
            self.count += len(line)
            yield line


class _CountingBody:
    """A response body passed through chunk by chunk; `done` runs once when the server closes
    it, whether the client read everything or went away."""

    def __init__(self, body: Iterable[bytes], done: Callable[[int], None]) -> None:
        self._body, self._done, self.sent = body, done, 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._body:
            self.sent += len(chunk)
            yield chunk

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            self._done(self.sent)


class _SentFile:
    """A file response's file, as the server sees it. socket.sendfile() leaves the file at the
    offset it reached with a seek() (gunicorn then resets the descriptor itself, so the file's
    own position cannot be trusted); a server that reads instead goes through read()."""

    mode = "rb"

    def __init__(self, raw: Any) -> None:
        self._raw = raw
        self.start = self.position = raw.tell()

    def fileno(self) -> int:
        return self._raw.fileno()

    def seek(self, offset: int, whence: int = 0) -> int:
        self.position = self._raw.seek(offset, whence)
        return self.position

    def tell(self) -> int:
        return self._raw.tell()

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self.position += len(data)
        return data

    def close(self) -> None:
        self._raw.close()


def _file_response(body: Any, done: Callable[[int], None]) -> Any:
    """Keep the server's own file wrapper, so it still uses sendfile, with a file that notes
    how far sending got."""
    try:
        sent_file = _SentFile(body.filelike)
    except (OSError, ValueError, AttributeError):
        return _CountingBody(body, done)
    body.filelike = sent_file

    def close() -> None:
        try:
            sent_file.close()
        finally:
            done(max(0, sent_file.position - sent_file.start))

    body.close = close
    return body


class Observed:
    """WSGI middleware: one access record and one set of HTTP metrics per request."""

    def __init__(self, app: Callable, log_access: bool = True) -> None:
        self.app, self.log_access = app, log_access

    def __call__(self, environ: dict, start_response: Callable) -> Any:
        started = time.perf_counter()
        given = environ.get("HTTP_X_REQUEST_ID", "")
        rid = given if SANE_REQUEST_ID.match(given) else uuid.uuid4().hex
        environ["cargohold.request_id"] = rid
        counted = _CountingInput(environ["wsgi.input"])
        environ["wsgi.input"] = counted
        status: list[int] = [0]

        def start(status_line: str, headers: list, exc_info: Any = None):
            status[0] = int(status_line.split(" ", 1)[0])
            headers = [(k, v) for k, v in headers if k.lower() != "x-request-id"]
            headers.append(("X-Request-ID", rid))
            return start_response(status_line, headers, exc_info)

        def done(sent: int) -> None:
            self._record(environ, status[0], sent, counted.count, started)

        token = request_id.set(rid)
        metrics.HTTP_IN_FLIGHT.inc()
        try:
            body = self.app(environ, start)
        except BaseException:
            metrics.HTTP_IN_FLIGHT.dec()
            request_id.reset(token)
            raise
        request_id.reset(token)
        wrapper = environ.get("wsgi.file_wrapper")
        if isinstance(wrapper, type) and isinstance(body, wrapper) and hasattr(body, "filelike"):
            return _file_response(body, done)
        return _CountingBody(body, done)

    def _record(self, environ: dict, status: int, sent: int, received: int, started: float):
        metrics.HTTP_IN_FLIGHT.dec()
        elapsed = time.perf_counter() - started
        method = environ.get("REQUEST_METHOD", "")
        route = environ.get(ROUTE, "unmatched")
        label = method if method in METHODS else "other"
        metrics.HTTP_REQUESTS.labels(label, route, str(status)).inc()
        metrics.HTTP_DURATION.labels(label, route).observe(elapsed)
        metrics.HTTP_REQUEST_SIZE.labels(route).observe(received)
        metrics.HTTP_RESPONSE_SIZE.labels(route).observe(sent)
        outcome = UPLOAD_OUTCOMES.get((route, status))
        if outcome:
            metrics.UPLOAD_SESSIONS.labels(outcome).inc()
        if not self.log_access:
            return
        fields = {
            "request_id": environ["cargohold.request_id"],
            "remote_addr": environ.get("REMOTE_ADDR", ""),
            "method": method,
            "path": environ.get("PATH_INFO", ""),
            "route": route,
            "status": status,
            "bytes_sent": sent,
            "bytes_received": received,
            "duration_ms": round(elapsed * 1000, 3),
            "user": environ.get(USER),
            "org": environ.get(ORG),
            "repository": environ.get(REPOSITORY),
            "digest": environ.get(DIGEST),
            "user_agent": environ.get("HTTP_USER_AGENT"),
        }
        ACCESS.info(
            '%s - %s "%s %s %s" %s %s %sms request_id=%s',
            fields["remote_addr"],
            fields["user"] or "-",
            method,
            fields["path"],
            environ.get("SERVER_PROTOCOL", ""),
            status,
            sent,
            fields["duration_ms"],
            fields["request_id"],
            extra=fields,
        )
