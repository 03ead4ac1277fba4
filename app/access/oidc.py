"""CI workload identity: an OIDC ID token, checked against a robot's trust policies, stands in
for a stored secret.

The issuer's signing keys come from its JWKS document (found through its discovery document),
cached per issuer; a token signed with a key we have not seen triggers one refetch, so key
rotation works, but at most once per `REFETCH_AFTER` so forged key ids cannot hammer the issuer.
"""

from __future__ import annotations

import fnmatch
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from urllib.parse import urlparse

import jwt
from sqlalchemy import select

from app.models import TrustPolicy, User, db
from app.registry import limits

ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"]
CACHE_TTL = 600
REFETCH_AFTER = 10
LEEWAY = 60
MAX_DOCUMENT = 512 * 1024
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class OIDCError(Exception):
    """Why an ID token was refused; safe to show to the caller."""


def check_issuer_url(url: str) -> str:
    parsed = urlparse(url)
    if parsed.scheme == "https" and parsed.hostname:
        return url.rstrip("/")
    # Plain HTTP only on loopback, where a test or a sidecar issuer lives.
    if parsed.scheme == "http" and parsed.hostname in LOOPBACK:
        return url.rstrip("/")
    raise ValueError("the issuer must be an https:// URL")


def _fetch_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310 - scheme checked above
        body = resp.read(MAX_DOCUMENT + 1)
    if len(body) > MAX_DOCUMENT:
        raise OIDCError(f"document at {url} is too large")
    try:
        document = limits.loads(body)
    except limits.InputRejected as exc:
        raise OIDCError(f"document at {url} is refused: {exc}") from None
    if not isinstance(document, dict):
        raise OIDCError(f"document at {url} is not a JSON object")
    return document


@dataclass
class _Keys:
    fetched_at: float = 0.0
    keys: dict[str, jwt.PyJWK] = field(default_factory=dict)


class JWKSCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._issuers: dict[str, _Keys] = {}

    def _refresh(self, issuer: str) -> _Keys:
        try:
            discovery = _fetch_json(f"{issuer}/.well-known/openid-configuration")
            jwks_uri = discovery["jwks_uri"]
            check_issuer_url(jwks_uri)
            document = _fetch_json(jwks_uri)
        except (OSError, ValueError, KeyError) as exc:
            raise OIDCError(f"cannot read the issuer's keys: {exc}") from None
        keys: dict[str, jwt.PyJWK] = {}
        for jwk in document.get("keys", []):
            if jwk.get("use", "sig") != "sig" or "kid" not in jwk:
                continue
            try:
                keys[jwk["kid"]] = jwt.PyJWK(jwk)
            except jwt.PyJWKError:
                continue
        entry = _Keys(time.monotonic(), keys)
        self._issuers[issuer] = entry
        return entry

    def key(self, issuer: str, kid: str) -> jwt.PyJWK:
        with self._lock:
            entry = self._issuers.get(issuer)
            now = time.monotonic()
            if entry is None or now - entry.fetched_at > CACHE_TTL:
                entry = self._refresh(issuer)
            if kid not in entry.keys and now - entry.fetched_at > REFETCH_AFTER:
                entry = self._refresh(issuer)
            if kid not in entry.keys:
                raise OIDCError(f"the issuer has no signing key {kid!r}")
            return entry.keys[kid]


CACHE = JWKSCache()


def policies_for(robot: User) -> list[TrustPolicy]:
    return list(
        db.session.execute(select(TrustPolicy).where(TrustPolicy.robot_id == robot.id)).scalars()
    )


def _claims_match(wanted: dict, claims: dict) -> str | None:
    for name, pattern in wanted.items():
        value = claims.get(name)
        if value is None or not fnmatch.fnmatchcase(str(value), str(pattern)):
            return name
    return None


def verify(robot: User, id_token: str) -> tuple[TrustPolicy, dict]:
    """The trust policy the ID token satisfies and its claims, or OIDCError."""
    try:
        header = jwt.get_unverified_header(id_token)
        unverified = jwt.decode(id_token, options={"verify_signature": False})
    except jwt.InvalidTokenError as exc:
        raise OIDCError(f"malformed ID token: {exc}") from None
    issuer = str(unverified.get("iss", "")).rstrip("/")
    candidates = [p for p in policies_for(robot) if p.issuer.rstrip("/") == issuer]
    if not candidates:
        raise OIDCError(f"no trust policy of {robot.username} accepts issuer {issuer!r}")
    if header.get("alg") not in ALGORITHMS:
        raise OIDCError(f"signature algorithm {header.get('alg')!r} is not accepted")
    key = CACHE.key(issuer, str(header.get("kid", "")))
    reasons = []
    for policy in candidates:
        try:
            claims = jwt.decode(
                id_token,
                key.key,
                algorithms=[header["alg"]],
                audience=policy.audience,
                issuer=unverified.get("iss"),
                leeway=LEEWAY,
                options={"require": ["exp", "iat", "iss", "aud"]},
            )
        except jwt.InvalidTokenError as exc:
            reasons.append(str(exc))
            continue
        mismatch = _claims_match(policy.claims or {}, claims)
        if mismatch:
            reasons.append(f"claim {mismatch!r} does not match the trust policy")
            continue
        return policy, claims
    raise OIDCError("; ".join(reasons))
