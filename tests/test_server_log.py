"""What the server's own log says about clients that do not speak plain HTTP/1.1 properly."""

from __future__ import annotations

import socket
import ssl

import pytest
import requests


def log_after(server, action) -> str:
    """The server log lines written while `action` ran (and a request after it, so they are
    flushed before reading)."""
    start = server.log_path.stat().st_size
    action()
    assert requests.get(f"{server.url}/v2/", timeout=30).status_code in (200, 401)
    with open(server.log_path, "rb") as f:
        f.seek(start)
        return f.read().decode(errors="replace")


def tls_handshake(server) -> None:
    """What podman and skopeo do first against an insecure registry: try TLS."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with (
        socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock,
        pytest.raises(ssl.SSLError),
    ):
        context.wrap_socket(sock, server_hostname="127.0.0.1")


def raw(server, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(data)
        return sock.recv(4096)


def test_tls_probes_are_not_logged_as_invalid_requests(server):
    log = log_after(server, lambda: [tls_handshake(server) for _ in range(5)])
    assert "Invalid request" not in log
    assert "WARNING" not in log


def test_other_malformed_requests_still_warn(server):
    answers = []
    log = log_after(server, lambda: answers.append(raw(server, b"GET /v2/ HTTP/1.1\nHost: x\n\n")))
    assert answers[0].startswith(b"HTTP/1.1 400"), answers
    assert "Invalid request from ip=127.0.0.1" in log
