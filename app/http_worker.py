"""The gunicorn worker Cargohold is served with: gthread, but a request gets a thread only once
its headers have arrived.

gunicorn's gthread worker hands each readable connection to a thread, which then reads the
request line and headers blocking: twenty clients sending one header line every two seconds
hold twenty threads, and every other request waits. Here the worker's event loop reads the
header block itself, without blocking, under one deadline per request (`header_timeout`, from
the first byte wanted to the blank line); a connection that misses it gets 408 and is closed.
A complete header block goes to a thread with the bytes already read, and from then on every
socket read or write of that request waits at most `body_timeout` for progress, so a client
that stops sending its body (or reading the response) releases its thread.

Why not gevent: SQLite, the embedded default, blocks the whole event loop inside its C calls,
and a greenlet waiting on SQLite's busy timeout while another greenlet of the same worker holds
the write lock would wait the full timeout. Why not a proxy in front: one more process to run
in every deployment, test and container, and every blob byte copied once more.

The workers also share out connections evenly. They all wait on one listening socket, and the
kernel wakes them all for a new connection; whichever runs first takes it, so a burst of
connections (eight from one client, a CI fleet starting) can land on one worker while the
others idle, and one worker's GIL then serves them all at a third of the rate. Each worker keeps
its count of open connections in its own slot of shared memory (`_Shares`), and a worker
holding more than the average of the live workers stops accepting until the others catch up;
never while it holds none.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import multiprocessing
import re
import selectors
import time
import weakref
from collections import deque
from functools import partial

from gunicorn.workers.gthread import TConn, ThreadWorker

from app import http_body
from app.config import Settings

# Large enough for any real header block (tokens included), small enough to hold per connection.
MAX_HEAD = 64 * 1024
# A blank line ends the header block; bare LF too, so the parser (not a timeout) refuses it.
_END = re.compile(rb"\n\r?\n")
_TIMEOUT = b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
# A TLS ClientHello starts with a handshake record (0x16). Clients probing for TLS before falling
# back to plain HTTP (Go's, in podman, helm, docker) fall back only when answered in HTTP.
_TLS_HANDSHAKE = 0x16
_PLAIN_HTTP_ONLY = (
    b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Type: text/plain\r\n"
    b"Content-Length: 36\r\n\r\nThis server speaks plain HTTP only.\n"
)
_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"Connection: close\r\nContent-Length: 0\r\n\r\n"
)


log = logging.getLogger(__name__)


class _Shares:
    """Each worker's open connections and when its event loop last turned, one slot per worker,
    in shared memory made at import in the master (which loads the worker class) and inherited
    by every worker it forks. A worker writes only its own slot: nothing is read, changed and
    written back across processes, and no lock exists that a killed worker could take with it.
    A worker whose loop has not turned for `STALE` seconds (stopped, hung, killed, not yet
    started) is left out of the average, so the others never wait on its share."""

    SLOTS = 64
    STALE = 3.0

    def __init__(self) -> None:
        self.counts = multiprocessing.RawArray("q", self.SLOTS)
        self.turns = multiprocessing.RawArray("d", self.SLOTS)
        self.used = multiprocessing.RawValue("i", 0)  # slots below this may be held
        self.holders: weakref.WeakValueDictionary[int, object] = weakref.WeakValueDictionary()

    def claim(self, worker: object) -> int | None:
        """A slot for a worker the master is making, before it forks: one whose last holder the
        master has let go of (reaped). None past `SLOTS` workers: that one never declines."""
        for slot in range(self.SLOTS):
            if slot not in self.holders:
                self.holders[slot] = worker
                self.counts[slot], self.turns[slot] = 0, 0.0
                self.used.value = max(self.used.value, slot + 1)
                return slot
        log.warning("more than %d workers: the newest accepts without sharing", self.SLOTS)
        return None

    def live_average(self, now: float) -> float:
        """Open connections per worker whose loop turned lately."""
        total = live = 0
        for slot in range(self.used.value):
            if now - self.turns[slot] < self.STALE:
                total += self.counts[slot]
                live += 1
        return total / live if live else 0.0


_SHARES = _Shares()
# How often a worker over its share looks again, whatever else it is waiting for.
_SHARE_RECHECK = 0.05


class HeaderFirstWorker(ThreadWorker):
    def __init__(self, *args, **kwargs):
        # Made in the master, before the fork: the slot is the worker's from its first breath.
        self._slot = _SHARES.claim(self)
        super().__init__(*args, **kwargs)
        settings = Settings.from_env()
        self.header_timeout = settings.header_timeout
        self.body_timeout = settings.body_timeout
        self.reading_heads: deque[TConn] = deque()  # ordered by deadline
        self._notified_at = float("-inf")

    def notify(self) -> None:
        # gunicorn calls this on every turn of the event loop (twice a request), each time a
        # system call; the master looks at the heartbeat every `timeout` seconds.
        now = time.monotonic()
        if now - self._notified_at >= min(1.0, self.timeout / 4):
            self._notified_at = now
            super().notify()

    # ---- sharing connections out between the workers ----------------------------------------

    @property
    def nr_conns(self) -> int:
        return self.__dict__.get("_nr_conns", 0)

    @nr_conns.setter
    def nr_conns(self, value: int) -> None:
        # gunicorn counts every open and close through this attribute, wherever it happens.
        self.__dict__["_nr_conns"] = value
        if self._slot is not None:
            _SHARES.counts[self._slot] = value

    def _within_share(self) -> bool:
        """At most the average of the live workers' open connections, and always while it has
        none: the worker with the fewest is always within it, so some worker always accepts."""
        if self._slot is None or self.nr_conns == 0:
            return True
        return self.nr_conns <= _SHARES.live_average(time.monotonic())

    def set_accept_enabled(self, enabled: bool) -> None:
        super().set_accept_enabled(enabled and self._within_share())

    def wait_for_and_dispatch_events(self, timeout: float) -> None:
        # gunicorn's loop revisits accepting only when its own reason (too many connections)
        # changes; the share changes with the other workers, so it is looked at on every turn.
        if self._slot is not None:
            # A draining worker leaves the average at once: its share is no one's to wait for.
            _SHARES.turns[self._slot] = time.monotonic() if self.alive else 0.0
        if self.alive:
            self.set_accept_enabled(self.nr_conns < self.worker_connections)
        if self.alive and not self._accepting:
            timeout = min(timeout, _SHARE_RECHECK)
        super().wait_for_and_dispatch_events(timeout)

    def run(self) -> None:
        try:
            super().run()
        finally:
            # A stopping worker leaves the average at once.
            if self._slot is not None:
                _SHARES.turns[self._slot] = 0.0
            self.nr_conns = 0

    # ---- the event loop: connections whose headers have not all arrived -----------------------

    def accept(self, listener) -> None:
        try:
            client_sock, client_addr = listener.accept()
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        conn = TConn(self.cfg, client_sock, client_addr, listener.getsockname())
        if self.cfg.is_ssl:
            # The event loop cannot read a TLS header block; TLS ends in front of Cargohold.
            client_sock.setblocking(True)
            self.enqueue_req(conn)
            return
        self._read_head(conn)

    def on_client_socket_readable(self, conn: TConn, client) -> None:
        """A kept-alive connection's next request: its headers are read here too."""
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        self._read_head(conn)

    def _read_head(self, conn: TConn) -> None:
        conn.head = bytearray()
        conn.head_deadline = time.monotonic() + self.header_timeout
        self.reading_heads.append(conn)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_head_readable, conn))

    def _on_head_readable(self, conn: TConn, _client) -> None:
        try:
            data = conn.sock.recv(MAX_HEAD)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._drop(conn)
            return
        seen = len(conn.head)
        conn.head += data
        # Empty lines before a request line are allowed (RFC 9112, section 2.2).
        start = conn.head.lstrip(b"\r\n")[:1]
        if start == bytes([_TLS_HANDSHAKE]):
            self._drop(conn, _PLAIN_HTTP_ONLY)
        elif _END.search(conn.head, max(0, seen - 3)) or (start and not start.isupper()):
            # Headers complete, or not an HTTP request line at all (methods are upper-case
            # letters): either way a thread answers at once.
            self._stop_reading(conn)
            conn.prefetched, conn.head = bytes(conn.head), None
            conn.data_ready = True
            self.enqueue_req(conn)
        elif len(conn.head) > MAX_HEAD:
            self._drop(conn, _TOO_LARGE)

    def _stop_reading(self, conn: TConn) -> None:
        self.poller.unregister(conn.sock)
        self.reading_heads.remove(conn)

    def _drop(self, conn: TConn, answer: bytes | None = None) -> None:
        self._stop_reading(conn)
        self._close(conn, answer)

    def _close(self, conn: TConn, answer: bytes | None) -> None:
        if answer:
            with contextlib.suppress(OSError):
                conn.sock.send(answer)  # best effort: the socket is non-blocking
        self.nr_conns -= 1
        conn.close()

    def murder_pending(self) -> None:
        super().murder_pending()
        now = time.monotonic()
        while self.reading_heads and self.reading_heads[0].head_deadline <= now:
            conn = self.reading_heads.popleft()
            self.poller.unregister(conn.sock)
            self._close(conn, _TIMEOUT)

    # ---- the threads: one request whose headers are here -------------------------------------

    def handle(self, conn: TConn):
        head = getattr(conn, "prefetched", None)
        if head is not None:
            conn.prefetched = None
            conn.sock.setblocking(True)
            conn.init()
            conn.parser.unreader.unread(head)
        return super().handle(conn)

    def handle_request(self, req, conn: TConn):
        # Every read of the body and write of the response waits this long for progress.
        conn.sock.settimeout(self.body_timeout)
        req.body = http_body.direct(req.body)
        try:
            return super().handle_request(req, conn)
        except TimeoutError:
            # The client stopped reading the answer: an everyday event (a closed laptop, a
            # cancelled pull), worth a line, not gunicorn's traceback at ERROR. Closed.
            log.warning(
                "dropped %s %s: sending the answer stalled for %s s",
                req.method,
                req.path,
                self.body_timeout,
            )
            return False
