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
from dataclasses import dataclass, field

import jwt
from sqlalchemy import select

from app.access import audit, issuer_fetch
from app.access.issuer_fetch import FetchRefused, IssuerRules
from app.errors import Invalid
from app.models import TrustPolicy, User, db

ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"]
CACHE_TTL = 600
REFETCH_AFTER = 10
LEEWAY = 60


class OIDCError(Exception):
    """Why an ID token was refused: for the log. Callers answer with one generic refusal, so a
    trust policy cannot be used to probe which addresses and ports answer."""


def check_issuer_url(url: str) -> str:
    """The issuer of a new trust policy, or Invalid: the fetch rules, without DNS."""
    try:
        issuer_fetch.check_url(url, issuer_fetch.rules(), resolve=False)
    except FetchRefused as exc:
        raise Invalid(f"issuer refused: {exc}") from None
    return url.rstrip("/")


def _fetch_keys(issuer: str, rule: IssuerRules) -> dict[str, jwt.PyJWK]:
    discovery = issuer_fetch.fetch_json(f"{issuer}/.well-known/openid-configuration", rule)
    jwks_uri = discovery.get("jwks_uri")
    if not isinstance(jwks_uri, str):
        raise FetchRefused(f"the discovery document of {issuer} names no jwks_uri")
    document = issuer_fetch.fetch_json(jwks_uri, rule)
    keys: dict[str, jwt.PyJWK] = {}
    found = document.get("keys")
    for jwk in found if isinstance(found, list) else []:
        if not isinstance(jwk, dict) or jwk.get("use", "sig") != "sig" or "kid" not in jwk:
            continue
        try:
            keys[str(jwk["kid"])] = jwt.PyJWK(jwk)
        except (jwt.PyJWKError, ValueError, TypeError):
            continue
    return keys


@dataclass
class _Keys:
    fetched_at: float = 0.0
    keys: dict[str, jwt.PyJWK] = field(default_factory=dict)
    failure: str | None = None  # why the last fetch failed (its keys are the previous ones)


class JWKSCache:
    """Keys per issuer. The shared lock guards the dictionaries only and is never held across
    the network: a fetch holds its own issuer's lock, so one tenant's slow issuer delays only
    the logins that trust it, and concurrent logins of one issuer share one fetch."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._issuers: dict[str, _Keys] = {}
        self._fetching: dict[str, threading.Lock] = {}

    def _entry(self, issuer: str) -> _Keys | None:
        with self._lock:
            return self._issuers.get(issuer)

    def _refresh(self, issuer: str, seen: _Keys | None, rule: IssuerRules) -> _Keys:
        with self._lock:
            fetching = self._fetching.setdefault(issuer, threading.Lock())
        if not fetching.acquire(timeout=rule.timeout):
            raise OIDCError(f"the keys of {issuer} are still being fetched by another login")
        try:
            current = self._entry(issuer)
            if current is not seen:
                return current  # fetched by another login while this one waited
            try:
                entry = _Keys(time.monotonic(), _fetch_keys(issuer, rule))
            except FetchRefused as exc:
                # Kept, so the issuer is not asked again at once; the keys known so far stay.
                entry = _Keys(time.monotonic(), seen.keys if seen else {}, str(exc))
            with self._lock:
                self._issuers[issuer] = entry
            return entry
        finally:
            fetching.release()

    def key(self, issuer: str, kid: str, rule: IssuerRules) -> jwt.PyJWK:
        entry = self._entry(issuer)
        now = time.monotonic()
        ttl = REFETCH_AFTER if entry is not None and entry.failure else CACHE_TTL
        if entry is None or now - entry.fetched_at > ttl:
            entry = self._refresh(issuer, entry, rule)
        if kid not in entry.keys and time.monotonic() - entry.fetched_at > REFETCH_AFTER:
            entry = self._refresh(issuer, entry, rule)
        if kid not in entry.keys:
            why = f" (cannot read its keys: {entry.failure})" if entry.failure else ""
            raise OIDCError(f"the issuer has no signing key {kid!r}{why}")
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
    key = CACHE.key(issuer, str(header.get("kid", "")), issuer_fetch.rules())
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
        audit.note_ci(claims)
        audit.robot_proved(robot.id, robot.username)
        return policy, claims
    raise OIDCError("; ".join(reasons))
