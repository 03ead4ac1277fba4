"""An OIDC issuer on loopback, with its own keys, discovery and JWKS documents, that mints ID
tokens the way a CI system (GitHub Actions, GitLab) does."""

from __future__ import annotations

import json
import ssl
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class TLSFiles:
    cert: Path
    key: Path


def self_signed(folder: Path) -> TLSFiles:
    """A certificate for localhost that is its own CA (give it to clients as SSL_CERT_FILE)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    files = TLSFiles(folder / "issuer.pem", folder / "issuer.key")
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return files


class Issuer:
    """`redirect_to`: discovery answers 302 there. `trickle`: discovery sends its body a byte at
    a time until `release` is set (`trickling` is set once it has started)."""

    def __init__(
        self, redirect_to: str | None = None, trickle: bool = False, tls: TLSFiles | None = None
    ) -> None:
        self.keys: dict[str, rsa.RSAPrivateKey] = {}
        self.published: list[str] = []
        self.jwks_requests = 0
        self.requests: list[str] = []
        self.trickling = threading.Event()
        self.release = threading.Event()
        self.rotate()
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                issuer.requests.append(self.path)
                if self.path == "/.well-known/openid-configuration":
                    if redirect_to:
                        self.send_response(302)
                        self.send_header("Location", redirect_to)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    body = {"issuer": issuer.url, "jwks_uri": f"{issuer.url}/jwks"}
                elif self.path == "/jwks":
                    issuer.jwks_requests += 1
                    body = issuer.jwks()
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                if trickle and self.path != "/jwks":
                    data = data.ljust(4096)  # trailing whitespace: still the same JSON
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if trickle and self.path != "/jwks":
                    self._trickle(data)
                else:
                    self.wfile.write(data)

            def _trickle(self, data: bytes) -> None:
                issuer.trickling.set()
                sent = 0
                try:
                    while sent < len(data) - 1 and not issuer.release.wait(0.2):
                        self.wfile.write(data[sent : sent + 1])
                        self.wfile.flush()
                        sent += 1
                    self.wfile.write(data[sent:])
                except OSError:
                    pass  # the registry gave up on us, as it should

            def log_message(self, *_args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(tls.cert, tls.key)
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
            self.url = f"https://localhost:{self.httpd.server_port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def rotate(self) -> str:
        """A new signing key, published beside the old ones; returns its key id."""
        kid = uuid.uuid4().hex[:12]
        self.keys[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.published.append(kid)
        self.current = kid
        return kid

    def jwks(self) -> dict:
        keys = []
        for kid in self.published:
            jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.keys[kid].public_key()))
            keys.append({**jwk, "kid": kid, "use": "sig", "alg": "RS256"})
        return {"keys": keys}

    def token(
        self,
        audience: str = "cargohold",
        lifetime: int = 300,
        kid: str | None = None,
        key: rsa.RSAPrivateKey | None = None,
        issued_ago: int = 0,
        **claims,
    ) -> str:
        now = int(time.time()) - issued_ago
        payload = {
            "iss": self.url,
            "aud": audience,
            "sub": "repo:acme/app:ref:refs/heads/main",
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "repository": "acme/app",
            "ref": "refs/heads/main",
            **claims,
        }
        kid = kid or self.current
        return jwt.encode(payload, key or self.keys[kid], algorithm="RS256", headers={"kid": kid})

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
