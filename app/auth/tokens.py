"""Registry tokens: short-lived JWTs carrying the granted `access` list, and refresh tokens."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import jwt

from app.access import Principal
from app.caching import BoundedCache

ALGORITHM = "HS256"
LEEWAY = 30
# Verified tokens: (exp, principal, claims) by (signing key, service, type, token).
_VERIFIED: BoundedCache[tuple[str, str, str, str], tuple[int, Principal, dict]] = BoundedCache(4096)


@dataclass(frozen=True)
class TokenIssuer:
    key: str
    service: str
    ttl: int
    refresh_ttl: int

    def _sign(self, principal: Principal, extra: dict, ttl: int) -> str:
        now = int(time.time())
        claims = {
            "iss": self.service,
            "aud": self.service,
            "sub": principal.name,
            "kind": principal.kind,
            "uid": principal.user_id,
            "iat": now,
            "nbf": now - 1,
            "exp": now + ttl,
            "jti": uuid.uuid4().hex,
            **principal.limits(),
            **extra,
        }
        return jwt.encode(claims, self.key, algorithm=ALGORITHM)

    def access_token(self, principal: Principal, access: list[dict], ci: dict | None = None) -> str:
        """`ci`: the OIDC claims of the CI job behind the principal, carried for the audit log."""
        extra = {"typ": "access", "access": access, **({"ci": ci} if ci else {})}
        return self._sign(principal, extra, self.ttl)

    def refresh_token(self, principal: Principal) -> str:
        return self._sign(principal, {"typ": "refresh"}, self.refresh_ttl)

    def verify(self, token: str, typ: str) -> tuple[Principal, dict]:
        """Return the principal and claims, or raise jwt.InvalidTokenError. Clients send the
        same token with every request until it expires: a token verified once is kept, by the
        whole token (a signature alone would let a changed payload ride on a valid one), until
        its expiry, which is compared with the clock on every use."""
        key = (self.key, self.service, typ, token)
        hit = _VERIFIED.get(key)
        if hit is not None and time.time() <= hit[0] + LEEWAY:
            return hit[1], hit[2]
        principal, claims = self._decode(token, typ)
        _VERIFIED.put(key, (claims["exp"], principal, claims))
        return principal, claims

    def _decode(self, token: str, typ: str) -> tuple[Principal, dict]:
        claims = jwt.decode(
            token,
            self.key,
            algorithms=[ALGORITHM],
            audience=self.service,
            issuer=self.service,
            leeway=LEEWAY,
            options={"require": ["exp", "iat", "nbf", "sub"]},
        )
        if claims.get("typ") != typ:
            raise jwt.InvalidTokenError(f"not a {typ} token")
        return Principal.from_claims(claims), claims
