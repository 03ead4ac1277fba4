"""A request body of known length that the application can receive straight into its own buffer.

gunicorn's `Body.read(n)` receives into a new buffer on every call (a fresh 1 MiB allocation,
which glibc maps and unmaps: see gunicorn.conf.py) and copies the bytes through two more
buffers; Werkzeug's `LimitedStream.read` then copies them into a bytearray and out again. For a
1 GiB push that was a third of the server's CPU. `readinto` here fills the caller's buffer from
what gunicorn already holds (read ahead with the headers, or by an earlier `readline`), then
from the socket itself, keeping gunicorn's own state (the bytes left to read, its buffers)
exact, so its `read`, `readline` and the drain of an unread body after the response go on as
before.
"""

from __future__ import annotations

from gunicorn.http.body import Body, LengthReader


class DirectBody(Body):
    def readinto(self, target: bytearray | memoryview) -> int:
        """Fill `target` up to its length or the end of the body, as `read` returns all it
        was asked for: callers of `read(n)` through Werkzeug's stream count on that."""
        view = memoryview(target).cast("B")
        filled = 0
        try:
            while filled < len(view):
                rest = view[filled:]
                got = self._from_own_buffer(rest) or self._from_reader(rest)
                if not got:
                    break
                filled += got
        except Exception:
            # Where the next request starts on the connection is unknown: it is not reused.
            self.failed = True
            raise
        return filled

    def _from_own_buffer(self, view: memoryview) -> int:
        held = self.buf.getvalue()
        if not held:
            return 0
        taken = min(len(held), len(view))
        view[:taken] = held[:taken]
        self.buf = type(self.buf)()
        self.buf.write(held[taken:])
        return taken

    def _from_reader(self, view: memoryview) -> int:
        reader: LengthReader = self.reader
        wanted = min(len(view), reader.length)
        if wanted <= 0:
            return 0
        unreader = reader.unreader
        ahead = unreader.take_buffered()
        if ahead:
            taken = min(len(ahead), wanted)
            view[:taken] = ahead[:taken]
            if taken < len(ahead):
                unreader.unread(ahead[taken:])
        else:
            taken = unreader.sock.recv_into(view[:wanted])
        reader.length -= taken
        return taken


def direct(body: Body | None) -> Body | None:
    """The same body with `readinto`, when it has a known length and comes from a socket."""
    if (
        type(body) is Body
        and type(body.reader) is LengthReader
        and hasattr(body.reader.unreader, "sock")
        and hasattr(body.reader.unreader, "take_buffered")
    ):
        replacement = DirectBody(body.reader)
        replacement.buf, replacement.failed = body.buf, body.failed
        return replacement
    return body
