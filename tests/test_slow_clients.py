"""Slow and idle connections cannot hold the request threads, and are dropped after the header
and body timeouts. The bounds here are correctness bounds, far above any normal answer time."""

from __future__ import annotations

import base64
import contextlib
import secrets
import socket
import threading
import time

import pytest
import requests

from tests.support.client import OCIClient
from tests.support.server import make_server

SLOW = 40
HEADER_TIMEOUT = 6


@pytest.fixture(scope="module")
def small_server(tmp_path_factory):
    """Two workers of eight threads (the default), with short header and body timeouts."""
    srv = make_server(
        tmp_path_factory.mktemp("slow"),
        extra_env={
            "CARGOHOLD_HEADER_TIMEOUT": str(HEADER_TIMEOUT),
            "CARGOHOLD_BODY_TIMEOUT": "4",
            "CARGOHOLD_THREADS": "8",
        },
    )
    srv.start(workers=2)
    yield srv
    srv.stop()


def _connect(server) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=60)


def _closed_by_server(sock: socket.socket) -> bytes:
    """What the server sends before closing (a 408, or nothing); fails if it never closes."""
    received = b""
    try:
        while chunk := sock.recv(4096):  # a socket.timeout (60 s) here fails the test
            received += chunk
    except ConnectionResetError:
        pass  # closed with some of what the client sent unread
    return received


def test_slow_headers_do_not_starve_fresh_requests(small_server):
    slow = [_connect(small_server) for _ in range(SLOW)]
    idle = [_connect(small_server) for _ in range(5)]
    for sock in slow:
        sock.sendall(b"GET /v2/ HTTP/1.1\r\nHost: cargohold\r\n")
    stop = threading.Event()

    def trickle():
        # One header line every 2 s on each connection, as a slowloris client does.
        while not stop.wait(2):
            for sock in slow:
                with contextlib.suppress(OSError):
                    sock.sendall(b"X-Slow: 1\r\n")

    feeder = threading.Thread(target=trickle, daemon=True)
    feeder.start()
    try:
        for _ in range(4):
            stop.wait(1)
            # With threads reading headers, this waited for as long as the slow clients did.
            r = requests.get(f"{small_server.url}/v2/", timeout=5)
            assert r.status_code == 401
        admin = OCIClient(small_server.url, "admin", small_server.admin_password)
        digest, _ = admin.push_image("acme/main/app", "v1", [b"layer"])
        assert admin.request("GET", f"/v2/acme/main/app/manifests/{digest}").status_code == 200

        # Past the header timeout every slow connection is answered 408 and closed, even
        # though each kept sending; an idle one is closed too.
        for sock in slow:
            answer = _closed_by_server(sock)
            assert answer == b"" or answer.startswith(b"HTTP/1.1 408"), answer[:200]
        for sock in idle:
            answer = _closed_by_server(sock)
            assert answer == b"" or answer.startswith(b"HTTP/1.1 408"), answer[:200]
    finally:
        stop.set()
        feeder.join()
        for sock in slow + idle:
            sock.close()


def test_stalled_body_is_dropped_and_its_thread_released(small_server):
    admin = OCIClient(small_server.url, "admin", small_server.admin_password)
    r = admin.request("POST", "/v2/acme/main/stall/blobs/uploads/")
    assert r.status_code == 202, r.text
    token = admin.tokens["/v2/acme/main/stall/blobs/uploads/"]
    location = r.headers["Location"]
    stalled = []
    for _ in range(20):
        sock = _connect(small_server)
        sock.sendall(
            f"PATCH {location} HTTP/1.1\r\nHost: cargohold\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/octet-stream\r\n"
            "Content-Length: 1000\r\n\r\n0123456789".encode()
        )
        stalled.append(sock)
    try:
        # Twenty stalled bodies are more than the sixteen threads: they are dropped after the
        # body timeout, and the server answers again.
        for sock in stalled:
            answer = _closed_by_server(sock)
            assert answer == b"" or b" 408 " in answer.split(b"\r\n", 1)[0], answer[:200]
        assert requests.get(f"{small_server.url}/v2/", timeout=30).status_code == 401
    finally:
        for sock in stalled:
            sock.close()
    log = small_server.log_path.read_text()
    assert "Traceback" not in log, log[-3000:]


@pytest.mark.parametrize("sendfile", ["false", "true"])
def test_stalled_reader_is_dropped_and_its_thread_released(tmp_path, sendfile):
    """Clients that ask for a blob and never read it hold a thread each only until the body
    timeout, whether the blob is copied out or sent with sendfile."""
    srv = make_server(
        tmp_path,
        extra_env={
            "CARGOHOLD_STORAGE": "filesystem",  # S3 would answer with a redirect
            "CARGOHOLD_SENDFILE": sendfile,
            "CARGOHOLD_BODY_TIMEOUT": "3",
            "CARGOHOLD_THREADS": "2",
        },
    )
    srv.start(workers=2)
    try:
        admin = OCIClient(srv.url, "admin", srv.admin_password)
        # Far more than the socket buffers on both sides hold, so the sender stays blocked.
        digest = admin.push_blob("acme/main/stall/reader", secrets.token_bytes(64 * 1024 * 1024))
        path = f"/v2/acme/main/stall/reader/blobs/{digest}"
        assert admin.request("HEAD", path).status_code == 200
        stalled = []
        for _ in range(8):  # twice the four threads
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.settimeout(60)
            sock.connect(("127.0.0.1", srv.port))
            sock.sendall(
                f"GET {path} HTTP/1.1\r\nHost: cargohold\r\n"
                f"Authorization: Bearer {admin.tokens[path]}\r\n\r\n".encode()
            )
            stalled.append(sock)
        try:
            time.sleep(1)
            # Every thread is stuck writing to a client that does not read; after the body
            # timeout they are free again and the server answers.
            started = time.monotonic()
            assert requests.get(f"{srv.url}/v2/", timeout=60).status_code == 401
            assert time.monotonic() - started < 30
            for sock in stalled:
                # The connection was closed under the client: what it buffered, then the end.
                _closed_by_server(sock)
        finally:
            for sock in stalled:
                sock.close()
    finally:
        srv.stop()
    # One line for each, not a traceback.
    log = srv.log_path.read_text()
    assert "Traceback" not in log, log[-3000:]
    assert log.count(f"dropped GET {path}: sending the answer stalled for 3") >= 4, log[-3000:]


def test_tls_probe_is_answered_in_plain_http(small_server):
    """Clients that try TLS first (Go's, in podman, helm, docker) fall back to plain HTTP only
    when the answer is HTTP; waiting for a header block that never comes made them time out."""
    with _connect(small_server) as sock:
        sock.sendall(bytes.fromhex("16030100c8010000c40303") + bytes(64))
        answer = _closed_by_server(sock)
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]


def _poll(read, deadline: float = 20.0):
    """`read()` until it gives something true (within the deadline), else None."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if value := read():
            return value
        time.sleep(0.1)
    return None


def _head_of_answer(sock: socket.socket) -> bytes:
    """The status line and headers of the server's answer (or what it sent before closing)."""
    received = b""
    with contextlib.suppress(ConnectionResetError):
        while b"\r\n\r\n" not in received and (chunk := sock.recv(4096)):
            received += chunk
    return received


def test_a_body_in_flight_holds_no_write_transaction(server):
    """What a request writes before its body (here an access token's first use) is committed
    before the body streams: a client sending it at its own pace holds no row lock and, on
    SQLite, not the database's one write lock, so others write meanwhile."""
    alice = requests.Session()
    alice.auth = ("alice", server.users["alice"])
    r = alice.post(f"{server.url}/api/v1/tokens", json={"name": "slow-body"})
    assert r.status_code == 201, r.text
    token_id, secret = r.json()["id"], r.json()["token"]
    pusher = OCIClient(server.url, "alice", server.users["alice"])
    r = pusher.request("POST", "/v2/acme/main/slow-body/blobs/uploads/")
    assert r.status_code == 202, r.text
    body = secrets.token_bytes(1 << 20)
    basic = base64.b64encode(f"alice:{secret}".encode()).decode()
    sock = _connect(server)
    try:
        sock.sendall(
            f"PATCH {r.headers['Location']} HTTP/1.1\r\nHost: cargohold\r\n"
            f"Authorization: Basic {basic}\r\nContent-Type: application/octet-stream\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body[:4096]
        )
        # The token's use is committed while the body is still on its way...
        used = "SELECT last_used_at FROM access_tokens WHERE id = ?"
        assert _poll(lambda: server.sql(used, token_id)[0][0]), "written only with the body"
        # ...and another client writes meanwhile, with that same token.
        other = OCIClient(server.url, "alice", secret)
        other.push_image("acme/main/slow-body/other", "v1", [b"meanwhile"])
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(body[4096:])  # an early answer (and close) is read below
        answer = _head_of_answer(sock)
        assert answer.startswith(b"HTTP/1.1 202"), answer[:200]
    finally:
        sock.close()
