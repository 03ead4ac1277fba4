"""A stand-in for the Cognito hosted UI, as far as the authorization-code flow goes, over real
HTTP on loopback in front of a user pool served by moto (which implements the Cognito APIs but
not the hosted UI).

- `GET /oauth2/authorize` checks the request against the app client moto keeps (callback URL
  listed exactly, the code flow and the scopes allowed, PKCE S256) and shows a sign-in form;
- `POST /login` signs the person in with moto's `InitiateAuth` USER_PASSWORD_AUTH and sends the
  browser back to the redirect URI with a one-time code and the state, or with
  `error=access_denied` when they cancel;
- `POST /oauth2/token` authenticates the client (HTTP Basic with its secret), checks the code
  (once only), the redirect URI and the PKCE verifier, and answers with the tokens moto issued.
  Cognito writes the authorize request's `nonce` into the ID token; moto's `InitiateAuth` knows
  of none, so the stand-in adds it and signs the token again with the very key moto signs its
  tokens with (it ships in moto's package): every other claim is moto's own, and the signature
  verifies against the pool's published key set;
- `GET /logout` sends the browser to `logout_uri` when the client lists it.

Tests make it misbehave on purpose: `claims` changes the ID token's claims, `id_token`
replaces the token outright, `token_answer` replaces the token endpoint's whole answer.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import html
import json
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from botocore.exceptions import ClientError

from tests.support.moto import Pool

SCOPES = ["openid", "email"]


def moto_signing_key():
    """The private key moto signs every pool's tokens with."""
    raw = (resources.files("moto") / "cognitoidp/resources/jwks-private.json.gz").read_bytes()
    return jwt.PyJWK(json.loads(gzip.decompress(raw))).key


def resign(token: str, **changes) -> str:
    claims = jwt.decode(token, options={"verify_signature": False})
    claims.update(changes)
    return jwt.encode(claims, moto_signing_key(), algorithm="RS256", headers={"kid": "dummy"})


def allow_code_flow(pool: Pool, callback: str, sign_out: str) -> None:
    """Give the pool's app client the hosted UI's OAuth settings, as terraform/cognito.tf does."""
    pool.cognito.update_user_pool_client(
        UserPoolId=pool.pool_id,
        ClientId=pool.client_id,
        CallbackURLs=[callback],
        LogoutURLs=[sign_out],
        AllowedOAuthFlows=["code"],
        AllowedOAuthScopes=SCOPES,
        AllowedOAuthFlowsUserPoolClient=True,
        SupportedIdentityProviders=["COGNITO"],
    )


@dataclass
class Grant:
    client_id: str
    redirect_uri: str
    challenge: str
    nonce: str
    tokens: dict
    used: bool = False


@dataclass
class HostedUI:
    pool: Pool
    grants: dict[str, Grant] = field(default_factory=dict)
    token_requests: list[dict] = field(default_factory=list)
    # Misbehaviour, set by tests.
    claims: dict = field(default_factory=dict)
    id_token: Callable[[dict], str] | None = None
    token_answer: Callable[[], tuple[int, bytes]] | None = None

    def __post_init__(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                if parts.path == "/oauth2/authorize":
                    owner.authorize(self, query)
                elif parts.path == "/logout":
                    owner.logout(self, query)
                else:
                    owner.answer(self, 404, b"not found", "text/plain")

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length", "0"))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                path = urlsplit(self.path).path
                if path == "/login":
                    owner.login(self, form)
                elif path == "/oauth2/token":
                    owner.token(self, form)
                else:
                    owner.answer(self, 404, b"not found", "text/plain")

            def log_message(self, *_args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # ---- plumbing --------------------------------------------------------------------------

    @staticmethod
    def answer(handler, status: int, body: bytes, kind: str, headers: dict | None = None):
        handler.send_response(status)
        handler.send_header("Content-Type", kind)
        handler.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(body)

    def redirect(self, handler, target: str, **params: str) -> None:
        sep = "&" if "?" in target else "?"
        self.answer(handler, 302, b"", "text/plain", {"Location": target + sep + urlencode(params)})

    def client(self, client_id: str) -> dict | None:
        try:
            return self.pool.cognito.describe_user_pool_client(
                UserPoolId=self.pool.pool_id, ClientId=client_id
            )["UserPoolClient"]
        except ClientError:
            return None

    # ---- the hosted UI's pages -------------------------------------------------------------

    def authorize(self, handler, q: dict) -> None:
        client = self.client(q.get("client_id", ""))
        # As Cognito does: an unknown client or an unlisted redirect URI gets an error page,
        # never a redirect.
        if client is None or q.get("redirect_uri") not in client.get("CallbackURLs", []):
            self.answer(handler, 400, b"redirect_mismatch", "text/plain")
            return
        back = q["redirect_uri"]
        state = q.get("state", "")
        if q.get("response_type") != "code" or "code" not in client.get("AllowedOAuthFlows", []):
            self.redirect(handler, back, error="unsupported_response_type", state=state)
            return
        scopes = q.get("scope", "").split()
        if not set(scopes) <= set(client.get("AllowedOAuthScopes", [])) or "openid" not in scopes:
            self.redirect(handler, back, error="invalid_scope", state=state)
            return
        if q.get("code_challenge_method") != "S256" or len(q.get("code_challenge", "")) != 43:
            self.redirect(handler, back, error="invalid_request", state=state)
            return
        self.answer(handler, 200, self.form(q), "text/html; charset=utf-8")

    def form(self, q: dict, message: str = "") -> bytes:
        hidden = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
            for k, v in q.items()
            if k not in ("username", "password", "action")
        )
        note = f'<p class="error">{html.escape(message)}</p>' if message else ""
        return (
            "<!doctype html><title>Sign in</title><h1>Cognito hosted UI</h1>"
            f'{note}<form method="post" action="/login">{hidden}'
            '<label>Username <input name="username"></label>'
            '<label>Password <input name="password" type="password"></label>'
            '<button name="action" value="sign-in">Sign in</button>'
            '<button name="action" value="cancel">Cancel</button></form>'
        ).encode()

    def login(self, handler, form: dict) -> None:
        client = self.client(form.get("client_id", ""))
        back = form.get("redirect_uri", "")
        if client is None or back not in client.get("CallbackURLs", []):
            self.answer(handler, 400, b"redirect_mismatch", "text/plain")
            return
        state = form.get("state", "")
        if form.get("action") == "cancel":
            self.redirect(handler, back, error="access_denied", state=state)
            return
        username = form.get("username", "")
        try:
            tokens = self.pool.cognito.initiate_auth(
                ClientId=self.pool.client_id,
                AuthFlow="USER_PASSWORD_AUTH",
                AuthParameters={
                    "USERNAME": username,
                    "PASSWORD": form.get("password", ""),
                    "SECRET_HASH": self.pool.secret_hash(username),
                },
            )["AuthenticationResult"]
        except ClientError:
            page = self.form(form, "Incorrect username or password.")
            self.answer(handler, 200, page, "text/html; charset=utf-8")
            return
        code = secrets.token_urlsafe(24)
        self.grants[code] = Grant(
            client["ClientId"], back, form.get("code_challenge", ""), form.get("nonce", ""), tokens
        )
        self.redirect(handler, back, code=code, state=state)

    def logout(self, handler, q: dict) -> None:
        client = self.client(q.get("client_id", ""))
        target = q.get("logout_uri", "")
        if client is None or target not in client.get("LogoutURLs", []):
            self.answer(handler, 400, b"logout_uri not allowed", "text/plain")
            return
        self.answer(handler, 302, b"", "text/plain", {"Location": target})

    # ---- the token endpoint ----------------------------------------------------------------

    def token(self, handler, form: dict) -> None:
        self.token_requests.append(form)
        if self.token_answer is not None:
            status, body = self.token_answer()
            self.answer(handler, status, body, "application/json")
            return
        status, document = self.exchange(handler.headers.get("Authorization", ""), form)
        self.answer(handler, status, json.dumps(document).encode(), "application/json")

    def exchange(self, authorization: str, form: dict) -> tuple[int, dict]:
        scheme, _, encoded = authorization.partition(" ")
        try:
            client_id, _, secret = base64.b64decode(encoded).decode().partition(":")
        except ValueError:
            client_id, secret = "", ""
        client = self.client(client_id)
        if scheme != "Basic" or client is None or client.get("ClientSecret") != secret:
            return 401, {"error": "invalid_client"}
        if form.get("grant_type") != "authorization_code":
            return 400, {"error": "unsupported_grant_type"}
        grant = self.grants.get(form.get("code", ""))
        if grant is None or grant.used:
            return 400, {"error": "invalid_grant"}
        grant.used = True  # a code works once, whatever happens next
        verifier = form.get("code_verifier", "")
        computed = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        if (
            grant.client_id != client_id
            or form.get("client_id", client_id) != client_id
            or grant.redirect_uri != form.get("redirect_uri")
            or computed.rstrip(b"=").decode() != grant.challenge
        ):
            return 400, {"error": "invalid_grant"}
        claims = {"nonce": grant.nonce, **self.claims}
        id_token = resign(grant.tokens["IdToken"], **claims)
        if self.id_token is not None:
            id_token = self.id_token(grant.tokens)
        return 200, {
            "id_token": id_token,
            "access_token": grant.tokens["AccessToken"],
            "refresh_token": grant.tokens["RefreshToken"],
            "expires_in": grant.tokens["ExpiresIn"],
            "token_type": "Bearer",
        }
