"""Connections are shared out between the workers: a burst of them, or a client opening them one
after another, does not all land on one worker while the others idle (`app/http_worker.py`)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.http_worker import _Shares
from tests.support.server import Server, child_pids, running_server

CONNECTIONS = 8
REQUEST = b"GET /healthz HTTP/1.1\r\nHost: cargohold\r\n\r\n"
# Answered connections wait idle while the rest are opened: on a slow machine that can outlast
# the default 5 s keep-alive, and a connection the server closed would leave the count.
PATIENT = {"CARGOHOLD_KEEPALIVE": "120"}


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("balance"), PATIENT, workers=2) as srv:
        _both_serving(srv)
        yield srv


def _both_serving(server: Server) -> None:
    """The workers exist once started, but one still booting takes no share yet."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with _open(server, burst=True):
            serving = min(_connections_per_worker(server)) > 0
        _wait_closed(server)
        if serving:
            return
    pytest.fail("one worker never took a connection")


def _established_inodes(port: int) -> set[str]:
    """Socket inodes of the server's side of each established connection on `port`."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError), open(table) as lines:
            next(lines)
            for line in lines:
                fields = line.split()
                local_port = int(fields[1].rsplit(":", 1)[1], 16)
                if local_port == port and fields[3] == "01":
                    inodes.add(fields[9])
    return inodes


def _connections_per_worker(server: Server) -> list[int]:
    inodes = _established_inodes(server.port)
    counts = []
    for pid in child_pids(server.proc.pid):
        held = 0
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(FileNotFoundError):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                held += link.startswith("socket:[") and link[8:-1] in inodes
        counts.append(held)
    return counts


def _answered(sock: socket.socket) -> None:
    sock.sendall(REQUEST)
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(4096)
        assert chunk, "the server closed the connection"
        received += chunk
    assert received.startswith(b"HTTP/1.1 200"), received[:100]


@contextlib.contextmanager
def _open(server: Server, burst: bool) -> Iterator[list[socket.socket]]:
    socks: list[socket.socket] = []
    try:
        for _ in range(CONNECTIONS):
            socks.append(socket.create_connection(("127.0.0.1", server.port), timeout=30))
            if not burst:
                # One at a time: each connection is accepted and answered before the next.
                _answered(socks[-1])
        for sock in socks:
            if burst:
                _answered(sock)
        yield socks
    finally:
        for sock in socks:
            sock.close()


def _wait_closed(server: Server) -> None:
    """The workers close their ends once they read the clients' FIN."""
    deadline = time.monotonic() + 10
    while sum(_connections_per_worker(server)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sum(_connections_per_worker(server)) == 0


@pytest.mark.parametrize("burst", [False, True], ids=["one-after-another", "burst"])
def test_connections_are_shared_between_workers(server, burst):
    for _round in range(3):
        with _open(server, burst):
            counts = _connections_per_worker(server)
        assert sum(counts) == CONNECTIONS, counts
        # Within one of an even share (two for a burst, where both workers accept at once).
        assert max(counts) - min(counts) <= (2 if burst else 1), counts
        # Closed connections leave the count, so the next round is shared out afresh.
        _wait_closed(server)


def test_a_stopped_worker_does_not_hold_back_the_other(tmp_path: Path):
    """A worker that stops turning its loop (stopped, hung, killed) leaves the average: the
    other takes every connection after a few seconds at most, instead of waiting for a share
    the stopped one will never take."""
    with running_server(tmp_path, PATIENT, workers=2) as srv:
        _both_serving(srv)
        stopped = child_pids(srv.proc.pid)[0]
        os.kill(stopped, signal.SIGSTOP)
        try:
            started = time.monotonic()
            with _open(srv, burst=False):  # each connection answered within its 30 s timeout
                elapsed = time.monotonic() - started
            assert elapsed < 15, elapsed
        finally:
            with contextlib.suppress(ProcessLookupError):  # the master may have replaced it
                os.kill(stopped, signal.SIGCONT)


def test_a_worker_alone_accepts_everything(tmp_path: Path):
    with running_server(tmp_path, PATIENT, workers=1) as single, _open(single, burst=False):
        assert _connections_per_worker(single) == [CONNECTIONS]


def test_a_reaped_workers_slot_is_handed_out_again():
    class Worker:
        pass

    shares = _Shares()
    first, second = Worker(), Worker()
    assert (shares.claim(first), shares.claim(second)) == (0, 1)
    shares.counts[0], shares.turns[0] = 5, 123.0
    del first  # the master drops a worker once it has reaped it
    assert shares.claim(Worker()) == 0
    assert (shares.counts[0], shares.turns[0]) == (0, 0.0)  # the new holder starts afresh
    assert shares.live_average(time.monotonic()) == 0.0  # neither has turned its loop yet
