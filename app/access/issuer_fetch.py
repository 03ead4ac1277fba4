"""Reading an OIDC issuer's documents, which tenants name: a server-side request that must not
become a way into the network the server sits in.

- https only; plain http only for an origin listed by its full `http://` URL (a sidecar issuer);
- when `CARGOHOLD_OIDC_ISSUERS` is set, only the issuers it lists;
- loopback, private, link-local and other non-global addresses refused unless listed, checked
  after DNS resolution, and the connection made to the address that was checked (no rebinding);
- redirects followed only within the same origin, a few times;
- one deadline for the whole fetch (a watchdog closes a socket that trickles), and at most
  `MAX_DOCUMENT` bytes read.

Failures are `FetchRefused` with a detail for the log; callers show their own generic error.
`post_form` sends a form to an OAuth token endpoint under the same fences (the Cognito hosted
UI's code exchange, `app/access/hosted_ui.py`).
"""

from __future__ import annotations

import contextlib
import fnmatch
import http.client
import ipaddress
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlencode, urljoin, urlsplit

from flask import current_app

from app import limits

MAX_DOCUMENT = 64 * 1024
MAX_REDIRECTS = 3
REDIRECTS = {301, 302, 303, 307, 308}
DEFAULT_PORTS = {"https": 443, "http": 80}


class FetchRefused(Exception):
    """Why a document was not fetched: for the log, never for an anonymous caller."""


def _origin(scheme: str, host: str, port: int | None) -> str:
    return f"{scheme}://{host.lower()}:{port or DEFAULT_PORTS.get(scheme, 0)}"


def _entry_origin(entry: str) -> str:
    """`scheme://host[:port][/path]` -> `scheme://host:port`, the port possibly a glob."""
    scheme, _, rest = entry.partition("://")
    netloc = rest.split("/", 1)[0].lower()
    if netloc.startswith("["):  # an IPv6 literal, compared without its brackets
        host, _, tail = netloc[1:].partition("]")
        port = tail.removeprefix(":")
    else:
        host, _, port = netloc.partition(":")
    return f"{scheme.lower()}://{host}:{port or DEFAULT_PORTS.get(scheme.lower(), 0)}"


@dataclass(frozen=True)
class IssuerRules:
    # Issuer URLs (`https://gitlab.example.com`, `http://127.0.0.1:*`) or https host patterns
    # (`token.actions.githubusercontent.com`, `*.corp.example`); empty: any public https issuer.
    allowed: tuple[str, ...] = ()
    timeout: float = 5.0

    @classmethod
    def from_setting(cls, value: str, timeout: float) -> IssuerRules:
        return cls(tuple(e.strip() for e in value.split(",") if e.strip()), timeout)

    def listed(self, scheme: str, host: str, port: int | None) -> bool:
        origin = _origin(scheme, host, port)
        for entry in self.allowed:
            if "://" in entry:
                if fnmatch.fnmatchcase(origin, _entry_origin(entry)):
                    return True
            elif scheme == "https" and fnmatch.fnmatchcase(host.lower(), entry.lower()):
                return True
        return False


def rules() -> IssuerRules:
    settings = current_app.extensions["cargohold.settings"]
    return IssuerRules.from_setting(settings.oidc_issuers, settings.oidc_fetch_timeout)


def _parts(url: str) -> tuple[str, str, int | None]:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise FetchRefused(f"malformed URL {url!r}") from None
    if not parts.hostname or parts.username or parts.password:
        raise FetchRefused(f"malformed URL {url!r}")
    return parts.scheme.lower(), parts.hostname, port


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_url(url: str, rule: IssuerRules, resolve: bool = True) -> tuple[str, int, str | None]:
    """Refuse a URL the rules do not allow; return its host, port and the address to use."""
    scheme, host, port = _parts(url)
    listed = rule.listed(scheme, host, port)
    if rule.allowed and not listed:
        raise FetchRefused(f"{url} is not among the issuers CARGOHOLD_OIDC_ISSUERS allows")
    if scheme != "https" and not (scheme == "http" and listed):
        raise FetchRefused(f"{url} is not an https:// URL")
    port = port or DEFAULT_PORTS[scheme]
    if listed:
        return host, port, None if not resolve else _resolve(host, port)[0]
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None and not _public(host) or host.lower().rstrip(".") == "localhost":
        raise FetchRefused(f"{url} is on a loopback, private or link-local address")
    if not resolve:
        return host, port, None
    addresses = _resolve(host, port)
    private = [a for a in addresses if not _public(a)]
    if private:
        raise FetchRefused(f"{host} resolves to a non-public address ({private[0]})")
    return host, port, addresses[0]


def _resolve(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise FetchRefused(f"cannot resolve {host}: {exc}") from None
    return [info[4][0] for info in infos]


class _PinnedConnection(http.client.HTTPConnection):
    """An HTTP(S) connection to an address checked beforehand, with the URL's host for TLS."""

    def __init__(self, host: str, port: int, address: str, tls: bool, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self._address, self._tls, self.aborted = address, tls, False
        # Kept apart from `sock`, which http.client clears when the response owns the socket.
        self._raw: socket.socket | None = None

    def connect(self) -> None:
        self._raw = socket.create_connection((self._address, self.port), self.timeout)
        sock = self._raw
        if self._tls:
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=self.host)
        self.sock = sock

    def abort(self) -> None:
        self.aborted = True
        sock = self._raw
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def _get(url: str, rule: IssuerRules, deadline: float) -> tuple[int, str | None, bytes]:
    return _send("GET", url, rule, deadline)


def _send(
    method: str,
    url: str,
    rule: IssuerRules,
    deadline: float,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    error_bodies: bool = False,
) -> tuple[int, str | None, bytes]:
    """One request; the answer's body is read (bounded) for a 200, and for any other status
    when `error_bodies` (an OAuth endpoint explains its refusals in JSON)."""
    host, port, address = check_url(url, rule)
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise FetchRefused(f"{url}: no time left")
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    conn = _PinnedConnection(host, port, address, parts.scheme == "https", remaining)
    watchdog = threading.Timer(remaining, conn.abort)
    watchdog.daemon = True
    watchdog.start()
    try:
        conn.request(
            method, path, body=body, headers={"Accept": "application/json", **(headers or {})}
        )
        resp = conn.getresponse()
        if resp.status != 200 and not error_bodies:
            return resp.status, resp.getheader("Location"), b""
        answer = bytearray()
        while chunk := resp.read1(16384):
            answer += chunk
            if len(answer) > MAX_DOCUMENT:
                raise FetchRefused(f"{url}: document larger than {MAX_DOCUMENT} bytes")
    except (OSError, http.client.HTTPException) as exc:
        if conn.aborted:
            raise FetchRefused(f"{url}: no complete answer within the deadline") from None
        raise FetchRefused(f"{url}: {exc.__class__.__name__}: {exc}") from None
    finally:
        watchdog.cancel()
        conn.close()
    if conn.aborted:
        raise FetchRefused(f"{url}: no complete answer within the deadline")
    return resp.status, resp.getheader("Location"), bytes(answer)


def post_form(
    url: str, fields: dict[str, str], rule: IssuerRules, headers: dict[str, str] | None = None
) -> tuple[int, dict | None]:
    """POST a form to an OAuth endpoint under the same fences (no redirect followed): its
    status and its JSON object, None when the answer is not one."""
    body = urlencode(fields).encode()
    sent = {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})}
    deadline = time.monotonic() + rule.timeout
    status, _, answer = _send("POST", url, rule, deadline, body, sent, error_bodies=True)
    try:
        document = limits.loads(answer) if answer else None
    except limits.InputRejected:
        document = None
    return status, document if isinstance(document, dict) else None


def fetch_json(url: str, rule: IssuerRules) -> dict:
    """The JSON object at `url`, or FetchRefused."""
    deadline = time.monotonic() + rule.timeout
    origin = _origin(*_parts(url))
    for _ in range(MAX_REDIRECTS + 1):
        status, location, body = _get(url, rule, deadline)
        if status in REDIRECTS and location:
            target = urljoin(url, location)
            if _origin(*_parts(target)) != origin:
                raise FetchRefused(f"{url} redirects to another origin ({target})")
            url = target
            continue
        if status != 200:
            raise FetchRefused(f"{url} answered {status}")
        try:
            document = limits.loads(body)
        except limits.InputRejected as exc:
            raise FetchRefused(f"{url}: refused ({exc})") from None
        if not isinstance(document, dict):
            raise FetchRefused(f"{url}: not a JSON object")
        return document
    raise FetchRefused(f"{url}: more than {MAX_REDIRECTS} redirects")
