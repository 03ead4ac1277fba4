"""A server killed mid-upload leaves no blob under the digest, and the client can retry."""

from __future__ import annotations

import socket
import time

from tests.support.client import OCIClient, digest_of
from tests.support.server import make_server


def send_partial_upload(host: str, port: int, path: str, token: str, total: int, sent: int):
    """Open an upload body of `total` bytes and stop after `sent`: a client still sending."""
    sock = socket.create_connection((host, port))
    sock.sendall(
        (
            f"PUT {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/octet-stream\r\nContent-Length: {total}\r\n\r\n"
        ).encode()
        + b"x" * sent
    )
    return sock


def test_kill_during_upload_then_retry(tmp_path):
    server = make_server(tmp_path / "data")
    server.start()
    try:
        client = OCIClient(server.url, "admin", server.admin_password)
        name = "acme/main/crash"
        data = b"x" * (8 * 1024 * 1024)
        digest = digest_of(data)
        location = client.request("POST", f"/v2/{name}/blobs/uploads/").headers["Location"]
        token = client.tokens[f"/v2/{name}/blobs/uploads/"]
        sock = send_partial_upload(
            "127.0.0.1", server.port, f"{location}?digest={digest}", token, len(data), 3_000_000
        )
        time.sleep(0.5)
        server.kill()
        sock.close()

        blobs = tmp_path / "data" / "storage" / "blobs"
        assert not any(p.is_file() for p in blobs.rglob("*")), "a blob appeared from a dead upload"

        server.start()
        client = OCIClient(server.url, "admin", server.admin_password)
        assert client.request("HEAD", f"/v2/{name}/blobs/{digest}").status_code == 404
        # The client simply retries from scratch.
        r = client.request("POST", f"/v2/{name}/blobs/uploads/?digest={digest}", data=data)
        assert r.status_code == 201, r.text
        r = client.request("GET", f"/v2/{name}/blobs/{digest}")
        assert r.status_code == 200 and digest_of(r.content) == digest
    finally:
        server.stop()
