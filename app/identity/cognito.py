"""An Amazon Cognito user pool vouches for passwords and tokens; local accounts stay possible.

Basic credentials (podman, helm, twine, pip) are checked with the pool's `USER_PASSWORD_AUTH`
flow. The ID and access tokens the pool issues are verified here, against the pool's published
keys, so a bearer token costs no call to Cognito. A user record is linked to the pool's `sub`;
membership of the configured group makes a site administrator.

A user that exists here with a local password and no `sub` (the break-glass administrator from
`flask bootstrap`, or anyone created with `flask user create`) keeps signing in locally, and a
pool account of the same name never takes it over.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
import urllib.request
from dataclasses import dataclass, field

import jwt
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.caching import BoundedCache
from app.errors import Invalid
from app.identity import IdentityUnavailable, check_username
from app.identity.local import LocalIdentity
from app.models import User, db

log = logging.getLogger(__name__)

# Cognito signs with RS256 only; anything else in a header is a forgery attempt.
ALGORITHMS = ["RS256"]
LEEWAY = 30
KEYS_TTL = 3600
# A token naming an unknown key refetches the key set, at most this often (key rotation works,
# made-up key ids cannot hammer the pool's endpoint).
REFETCH_AFTER = 10
MAX_DOCUMENT = 256 * 1024
# Answers that mean "not this password" rather than "Cognito is unwell".
REFUSALS = {
    "NotAuthorizedException",
    "UserNotFoundException",
    "UserNotConfirmedException",
    "PasswordResetRequiredException",
    "InvalidParameterException",
}
VERIFIED_TTL = 60.0
VERIFIED_SIZE = 1024


class TokenRefused(jwt.InvalidTokenError):
    """A token of the pool that is not acceptable here; the message is safe to show."""


class LinkConflict(Exception):
    """A pool account whose username belongs to a local account not linked to it."""


@dataclass
class PoolKeys:
    """The pool's signing keys (JWKS), cached, refetched on expiry or on an unknown key id."""

    url: str
    ttl: float = KEYS_TTL
    refetch_after: float = REFETCH_AFTER
    fetched_at: float = -1e9
    keys: dict[str, jwt.PyJWK] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _fetch(self) -> None:
        try:
            with urllib.request.urlopen(self.url, timeout=10) as resp:  # noqa: S310 - config URL
                body = resp.read(MAX_DOCUMENT + 1)
            if len(body) > MAX_DOCUMENT:
                raise ValueError("key set too large")
            document = json.loads(body)
        except (OSError, ValueError) as exc:
            raise IdentityUnavailable(f"cannot read the user pool's keys: {exc}") from None
        keys: dict[str, jwt.PyJWK] = {}
        for jwk in document.get("keys", []) if isinstance(document, dict) else []:
            if not isinstance(jwk, dict) or jwk.get("use", "sig") != "sig" or "kid" not in jwk:
                continue
            try:
                keys[str(jwk["kid"])] = jwt.PyJWK(jwk)
            except jwt.PyJWKError:
                continue
        self.keys, self.fetched_at = keys, time.monotonic()

    def key(self, kid: str) -> jwt.PyJWK:
        with self._lock:
            age = time.monotonic() - self.fetched_at
            if age > self.ttl or (kid not in self.keys and age > self.refetch_after):
                self._fetch()
            if kid not in self.keys:
                raise TokenRefused(f"the user pool has no signing key {kid!r}")
            return self.keys[kid]


@dataclass(frozen=True)
class Identity:
    """What a verified token says about its holder."""

    sub: str
    username: str
    email: str | None
    groups: tuple[str, ...]


def link_user(sub: str, username: str, email: str | None, site_admin: bool | None) -> User:
    """The user linked to `sub`: found or created, e-mail and site administration kept in step
    with the pool. Safe to call twice, or from two processes at once."""
    user = db.session.execute(select(User).where(User.cognito_sub == sub)).scalar_one_or_none()
    if user is None:
        check_username(username)
        taken = db.session.execute(
            select(User).where(User.username == username)
        ).scalar_one_or_none()
        if taken is not None:
            raise LinkConflict(f"username {username!r} belongs to another account")
        user = User(username=username, cognito_sub=sub, email=email, is_site_admin=bool(site_admin))
        try:
            with db.session.begin_nested():
                db.session.add(user)
        except IntegrityError:
            # Another worker or replica linked it first; theirs is the row.
            user = db.session.execute(
                select(User).where(User.cognito_sub == sub)
            ).scalar_one_or_none()
            if user is None:
                raise LinkConflict(f"username {username!r} belongs to another account") from None
        return user
    changed = False
    if email and user.email != email:
        user.email, changed = email, True
    if site_admin is not None and user.is_site_admin != site_admin:
        user.is_site_admin, changed = site_admin, True
    if changed:
        db.session.flush()
    return user


class CognitoIdentity:
    def __init__(self, settings) -> None:
        if not settings.cognito_user_pool_id or not settings.cognito_client_id:
            raise ValueError(
                "CARGOHOLD_IDENTITY=cognito needs CARGOHOLD_COGNITO_USER_POOL_ID and "
                "CARGOHOLD_COGNITO_CLIENT_ID"
            )
        self.pool_id = settings.cognito_user_pool_id
        self.client_id = settings.cognito_client_id
        self.client_secret = settings.cognito_client_secret
        # Pool ids start with their region: "eu-west-1_AbCdEf123".
        self.region = settings.cognito_region or self.pool_id.split("_", 1)[0]
        self.endpoint = settings.cognito_endpoint
        self.admin_group = settings.cognito_admin_group
        self.issuer = f"https://cognito-idp.{self.region}.amazonaws.com/{self.pool_id}"
        base = f"{self.endpoint}/{self.pool_id}" if self.endpoint else self.issuer
        self.keys = PoolKeys(f"{base}/.well-known/jwks.json")
        self._local = LocalIdentity()
        self._lock = threading.Lock()
        self._clients: dict[bool, object] = {}
        self._verified: BoundedCache[str, str] = BoundedCache(VERIFIED_SIZE, ttl=VERIFIED_TTL)
        # Keys of the verified-password cache are HMACs under a key no one else ever sees.
        self._cache_secret = secrets.token_bytes(32)

    # ---- AWS --------------------------------------------------------------------------------

    def _client(self, signed: bool):
        """Sign-in needs no AWS credentials (unsigned); administration does (the task role)."""
        with self._lock:
            if signed not in self._clients:
                import boto3
                from botocore import UNSIGNED
                from botocore.config import Config

                config = Config(
                    connect_timeout=3,
                    read_timeout=10,
                    retries={"mode": "standard", "max_attempts": 3},
                    **({} if signed else {"signature_version": UNSIGNED}),
                )
                self._clients[signed] = boto3.session.Session().client(
                    "cognito-idp",
                    region_name=self.region,
                    endpoint_url=self.endpoint or None,
                    config=config,
                )
            return self._clients[signed]

    def secret_hash(self, username: str) -> str:
        digest = hmac.new(
            self.client_secret.encode(), (username + self.client_id).encode(), hashlib.sha256
        ).digest()
        return base64.b64encode(digest).decode()

    def _sign_in(self, username: str, password: str) -> Identity | None:
        from botocore.exceptions import BotoCoreError, ClientError

        params = {"USERNAME": username, "PASSWORD": password}
        if self.client_secret:
            params["SECRET_HASH"] = self.secret_hash(username)
        try:
            answer = self._client(signed=False).initiate_auth(
                ClientId=self.client_id, AuthFlow="USER_PASSWORD_AUTH", AuthParameters=params
            )
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in REFUSALS:
                log.info("cognito refused %r: %s", username, code)
                return None
            raise IdentityUnavailable(f"cognito: {code or exc}") from None
        except BotoCoreError as exc:
            raise IdentityUnavailable(f"cognito: {exc}") from None
        result = answer.get("AuthenticationResult")
        if not result:
            # A challenge (new password, MFA) needs an interactive client; registry clients
            # cannot answer one, so the password alone does not sign them in.
            log.info("cognito asks %r for %s", username, answer.get("ChallengeName"))
            return None
        return self.identity(result["IdToken"])

    # ---- tokens -----------------------------------------------------------------------------

    def issued(self, token: str) -> bool:
        """Whether a bearer token claims to come from this pool (before any verification)."""
        try:
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.InvalidTokenError:
            return False
        return isinstance(claims, dict) and claims.get("iss") == self.issuer

    def verify(self, token: str) -> dict:
        """The claims of a pool ID or access token meant for our app client, or TokenRefused."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise TokenRefused(f"malformed token: {exc}") from None
        if header.get("alg") not in ALGORITHMS:
            raise TokenRefused(f"signature algorithm {header.get('alg')!r} is not accepted")
        key = self.keys.key(str(header.get("kid", "")))
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=ALGORITHMS,
                issuer=self.issuer,
                leeway=LEEWAY,
                options={"require": ["exp", "iat", "iss", "sub", "token_use"], "verify_aud": False},
            )
        except jwt.InvalidTokenError as exc:
            raise TokenRefused(str(exc)) from None
        use = claims.get("token_use")
        # ID tokens name the app client as audience, access tokens in `client_id`.
        client = claims.get("aud") if use == "id" else claims.get("client_id")
        if use not in ("id", "access"):
            raise TokenRefused(f"token_use {use!r} is not accepted")
        if client != self.client_id:
            raise TokenRefused("the token was issued to another app client")
        return claims

    def identity(self, token: str) -> Identity:
        return self.identity_of(self.verify(token))

    @staticmethod
    def identity_of(claims: dict) -> Identity:
        """What verified claims say about their holder."""
        username = claims.get("cognito:username") or claims.get("username") or ""
        verified = claims.get("email_verified") in (True, "true")
        groups = claims.get("cognito:groups") or []
        return Identity(
            sub=str(claims["sub"]),
            username=str(username),
            email=str(claims["email"]).lower() if verified and claims.get("email") else None,
            groups=tuple(str(g) for g in groups) if isinstance(groups, list) else (),
        )

    def link(self, who: Identity) -> User | None:
        admin = (self.admin_group in who.groups) if self.admin_group else None
        try:
            return link_user(who.sub, who.username, who.email, admin)
        except (LinkConflict, Invalid) as exc:
            log.warning("cognito user %s (%r) not linked: %s", who.sub, who.username, exc)
            return None

    def bearer_user(self, token: str) -> User:
        """The user a pool token stands for, or TokenRefused."""
        user = self.link(self.identity(token))
        if user is None:
            raise TokenRefused("this user pool account is not linked to a user here")
        return user

    # ---- the IdentityProvider port ----------------------------------------------------------

    def _cache_key(self, username: str, password: str) -> str:
        message = f"{username}\0{password}".encode()
        return hmac.new(self._cache_secret, message, hashlib.sha256).hexdigest()

    def _recent(self, key: str) -> str | None:
        return self._verified.get(key)

    def _remember(self, key: str, sub: str) -> None:
        self._verified.put(key, sub)

    def authenticate(self, username: str, password: str) -> User | None:
        local = db.session.execute(
            select(User).where(User.username == username)
        ).scalar_one_or_none()
        if local is not None and local.cognito_sub is None:
            return self._local.authenticate(username, password)
        # Registry clients send Basic credentials with every request: a pool round trip for
        # each would be slow and would eat into the pool's request quota.
        key = self._cache_key(username, password)
        sub = self._recent(key)
        if sub is not None and local is not None and local.cognito_sub == sub:
            return local
        who = self._sign_in(username, password)
        if who is None:
            return None
        user = self.link(who)
        if user is not None:
            self._remember(key, who.sub)
        return user

    def set_password(self, user: User, password: str) -> None:
        if user.cognito_sub is None:
            self._local.set_password(user, password)
            return
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._client(signed=True).admin_set_user_password(
                UserPoolId=self.pool_id, Username=user.username, Password=password, Permanent=True
            )
        except ClientError as exc:
            error = exc.response.get("Error", {})
            if error.get("Code") in ("InvalidPasswordException", "InvalidParameterException"):
                raise Invalid(
                    error.get("Message") or "the user pool refused this password"
                ) from None
            raise IdentityUnavailable(f"cognito: {error.get('Code') or exc}") from None
        except BotoCoreError as exc:
            raise IdentityUnavailable(f"cognito: {exc}") from None
        self._verified.clear()
