"""Signing people in through the Cognito hosted UI: the OAuth 2.0 authorization-code flow.

`start` makes a flow: a random `state` (binds the callback to the browser that began it), a
`nonce` (binds the ID token to this flow) and a PKCE verifier whose S256 challenge goes to the
authorize endpoint; the caller keeps the flow (the console keeps it in its signed session) and
hands it back with the code to `finish`. `finish` exchanges the code at `<domain>/oauth2/token`
through the fenced fetch (bounded in time and size, no redirects), verifies the ID token against
the pool's keys (issuer, audience = our app client, expiry, `token_use`, the flow's nonce) and
finds the user exactly as a Cognito password sign-in does (`CognitoIdentity.link`).

Every refusal is `SignInFailed` with a `reason` the console turns into a page; its detail is for
the log only. Cognito being unreachable is `IdentityUnavailable`, as for passwords.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import time
from dataclasses import asdict, dataclass
from urllib.parse import urlencode

from flask import current_app

from app.access.issuer_fetch import FetchRefused, IssuerRules, post_form
from app.identity import IdentityUnavailable
from app.identity.cognito import CognitoIdentity, TokenRefused
from app.models import User

log = logging.getLogger(__name__)

SCOPES = "openid email"
# How long a person may take at the hosted UI before the flow they started is forgotten.
FLOW_TTL = 600
# One deadline for the whole code exchange: connect, send, read.
EXCHANGE_TIMEOUT = 10.0

# Why a sign-in did not complete; each has its own page (app/console/views_cognito.py).
DENIED = "denied"  # the person cancelled, or Cognito refused them
PROVIDER = "provider"  # Cognito answered the callback with another error
STATE = "state"  # no flow of this browser has that state: stale, replayed or forged
CODE = "code"  # the code was refused: used already, expired, or not for this flow
TOKEN = "token"  # the ID token did not verify
UNKNOWN_USER = "unknown-user"  # no user here for that pool account
MISCONFIGURED = "misconfigured"  # Cognito refused our client or its answer made no sense


class SignInFailed(Exception):
    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True)
class Flow:
    """One sign-in begun at the hosted UI, as the callback must find it again."""

    state: str
    nonce: str
    verifier: str
    redirect_uri: str
    started: int
    next_page: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: object) -> Flow | None:
        if not isinstance(raw, dict):
            return None
        try:
            return cls(**raw)
        except TypeError:
            return None

    def expired(self, now: float | None = None) -> bool:
        return (now if now is not None else time.time()) - self.started > FLOW_TTL


def challenge(verifier: str) -> str:
    """PKCE's S256 code challenge (RFC 7636): base64url(sha256(verifier)), unpadded."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class HostedUI:
    domain: str  # https://<prefix>.auth.<region>.amazoncognito.com, or a custom domain
    identity: CognitoIdentity
    timeout: float = EXCHANGE_TIMEOUT

    @property
    def client_id(self) -> str:
        return self.identity.client_id

    def start(self, redirect_uri: str, next_page: str | None = None) -> tuple[Flow, str]:
        """A new flow, and the authorize URL to send the browser to."""
        flow = Flow(
            state=secrets.token_urlsafe(32),
            nonce=secrets.token_urlsafe(32),
            # 86 characters of the unreserved alphabet: within PKCE's 43 to 128.
            verifier=secrets.token_urlsafe(64),
            redirect_uri=redirect_uri,
            started=int(time.time()),
            next_page=next_page,
        )
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.client_id,
                "redirect_uri": redirect_uri,
                "scope": SCOPES,
                "state": flow.state,
                "nonce": flow.nonce,
                "code_challenge": challenge(flow.verifier),
                "code_challenge_method": "S256",
            }
        )
        return flow, f"{self.domain}/oauth2/authorize?{query}"

    def logout_url(self, return_to: str) -> str:
        """Ends the hosted UI's own session too, then comes back to `return_to` (one of the app
        client's sign-out URLs)."""
        query = urlencode({"client_id": self.client_id, "logout_uri": return_to})
        return f"{self.domain}/logout?{query}"

    def finish(self, flow: Flow, code: str) -> User:
        """The user the code stands for, or SignInFailed."""
        id_token = self._exchange(flow, code)
        try:
            claims = self.identity.verify(id_token)
        except TokenRefused as exc:
            raise SignInFailed(TOKEN, str(exc)) from None
        if claims.get("token_use") != "id":
            raise SignInFailed(TOKEN, f"token_use {claims.get('token_use')!r} is not an ID token")
        nonce = claims.get("nonce")
        if not isinstance(nonce, str) or not hmac.compare_digest(nonce, flow.nonce):
            raise SignInFailed(TOKEN, "the ID token's nonce is not this flow's")
        who = self.identity.identity_of(claims)
        user = self.identity.link(who)
        if user is None or user.is_robot:
            raise SignInFailed(UNKNOWN_USER, f"pool account {who.sub} ({who.username!r})")
        return user

    def _exchange(self, flow: Flow, code: str) -> str:
        fields = {
            "grant_type": "authorization_code",
            "client_id": self.client_id,
            "code": code,
            "redirect_uri": flow.redirect_uri,
            "code_verifier": flow.verifier,
        }
        headers: dict[str, str] = {}
        if self.identity.client_secret:
            pair = f"{self.client_id}:{self.identity.client_secret}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
        # The operator named this endpoint: listed, so plain http (a test stand-in) and private
        # addresses pass; still bounded in time and size, and never redirected.
        rule = IssuerRules((self.domain,), self.timeout)
        try:
            status, answer = post_form(f"{self.domain}/oauth2/token", fields, rule, headers)
        except FetchRefused as exc:
            raise IdentityUnavailable(f"cognito token endpoint: {exc}") from None
        error = (answer or {}).get("error")
        if status == 400 and error == "invalid_grant":
            raise SignInFailed(CODE, "the token endpoint refused the code (invalid_grant)")
        if status >= 500 or status == 429:
            raise IdentityUnavailable(f"cognito token endpoint answered {status}")
        if status != 200:
            raise SignInFailed(MISCONFIGURED, f"token endpoint answered {status} {error!r}")
        id_token = (answer or {}).get("id_token")
        if not isinstance(id_token, str) or not id_token:
            raise SignInFailed(MISCONFIGURED, "the token endpoint's answer has no id_token")
        return id_token


def configured() -> HostedUI | None:
    """The hosted UI, when this server uses a Cognito pool and knows its domain."""
    settings = current_app.extensions["cargohold.settings"]
    identity = current_app.extensions.get("cargohold.identity")
    if not settings.cognito_domain or not isinstance(identity, CognitoIdentity):
        return None
    return HostedUI(settings.cognito_domain, identity)
