"""The Cognito identity provider against a user pool served by moto: passwords through
USER_PASSWORD_AUTH, tokens verified locally against the pool's keys, users linked by `sub`."""

from __future__ import annotations

import base64
import gzip
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from app.access import tenancy
from app.identity import IdentityUnavailable
from app.identity.cognito import CognitoIdentity, PoolKeys, TokenRefused
from app.models import User, db
from tests.support.moto import create_pool

PASSWORD = "Corr3ct-horse-battery"


@pytest.fixture
def identity(app) -> CognitoIdentity:
    return app.extensions["cargohold.identity"]


def signed_up(pool, name: str | None = None) -> tuple[str, str]:
    username = name or f"user{uuid.uuid4().hex[:8]}"
    sub = pool.sign_up(username, PASSWORD, f"{username}@example.com")
    return username, sub


def moto_signing_key():
    """The key moto signs every pool's tokens with: tokens made with it are the pool's own,
    so expiry and claim checks can be tested on otherwise genuine tokens."""
    raw = (resources.files("moto") / "cognitoidp/resources/jwks-private.json.gz").read_bytes()
    return jwt.PyJWK(json.loads(gzip.decompress(raw))).key


def resign(token: str, **changes) -> str:
    claims = jwt.decode(token, options={"verify_signature": False})
    claims.update(changes)
    return jwt.encode(claims, moto_signing_key(), algorithm="RS256", headers={"kid": "dummy"})


# ---- passwords -------------------------------------------------------------------------------


def test_a_pool_password_signs_in_and_links_the_user(identity, pool):
    username, sub = signed_up(pool)
    user = identity.authenticate(username, PASSWORD)
    assert user is not None and user.username == username
    assert user.cognito_sub == sub and user.password_hash is None
    assert user.email == f"{username}@example.com"
    # Again: the same row, not a second user.
    again = identity.authenticate(username, PASSWORD)
    assert again.id == user.id
    assert db.session.query(User).filter_by(cognito_sub=sub).count() == 1


def test_a_wrong_password_or_unknown_user_is_refused(identity, pool):
    username, _ = signed_up(pool)
    assert identity.authenticate(username, "wrong-password-1") is None
    assert identity.authenticate(f"nobody{uuid.uuid4().hex[:6]}", PASSWORD) is None
    assert db.session.query(User).filter_by(username=username).count() == 0


def test_a_verified_password_is_remembered_briefly(app, identity, pool):
    # pip and twine send the password with every request: one pool round trip per minute.
    username, _ = signed_up(pool)
    user = identity.authenticate(username, PASSWORD)
    pool.cognito.admin_disable_user(UserPoolId=pool.pool_id, Username=username)
    assert identity.authenticate(username, PASSWORD).id == user.id  # from memory
    assert identity.authenticate(username, "Other-passw0rd-1") is None
    # A replica that has not seen the password asks the pool, which now refuses.
    fresh = CognitoIdentity(app.extensions["cargohold.settings"])
    assert fresh.authenticate(username, PASSWORD) is None


def test_the_admin_group_makes_a_site_administrator_and_leaving_it_unmakes(identity, pool):
    username, _ = signed_up(pool)
    pool.cognito.admin_add_user_to_group(
        UserPoolId=pool.pool_id, Username=username, GroupName=pool.admin_group
    )
    assert identity.authenticate(username, PASSWORD).is_site_admin
    pool.cognito.admin_remove_user_from_group(
        UserPoolId=pool.pool_id, Username=username, GroupName=pool.admin_group
    )
    user = identity.bearer_user(pool.tokens(username, PASSWORD)["IdToken"])
    assert not user.is_site_admin


def test_a_local_account_keeps_its_local_password_and_is_never_taken_over(identity, pool):
    # The break-glass administrator: a local password, checked here, whatever the pool says.
    tenancy.create_user("breakglass", "local-password-123", site_admin=True)
    assert identity.authenticate("breakglass", "local-password-123").is_site_admin
    # A pool account of the same name signs in with its pool password: it gets nothing.
    pool.sign_up("breakglass", PASSWORD, "intruder@example.com")
    assert identity.authenticate("breakglass", PASSWORD) is None
    token = pool.tokens("breakglass", PASSWORD)["IdToken"]
    with pytest.raises(TokenRefused, match="not linked"):
        identity.bearer_user(token)
    assert db.session.query(User).filter_by(username="breakglass").one().cognito_sub is None


def test_set_password_goes_to_the_pool_for_linked_users(identity, pool):
    username, _ = signed_up(pool)
    user = identity.authenticate(username, PASSWORD)
    identity.set_password(user, "An0ther-good-password")
    assert identity.authenticate(username, "An0ther-good-password").id == user.id
    assert identity.authenticate(username, PASSWORD) is None


def test_an_unreachable_pool_is_an_outage_not_a_refusal(app, pool):
    settings = app.extensions["cargohold.settings"]
    from dataclasses import replace

    from tests.support.server import free_port

    down = CognitoIdentity(replace(settings, cognito_endpoint=f"http://127.0.0.1:{free_port()}"))
    with pytest.raises(IdentityUnavailable):
        down.authenticate("someone", PASSWORD)


# ---- tokens ----------------------------------------------------------------------------------


def test_id_and_access_tokens_are_verified_locally(identity, pool):
    username, sub = signed_up(pool)
    tokens = pool.tokens(username, PASSWORD)
    for kind in ("IdToken", "AccessToken"):
        assert identity.issued(tokens[kind])
        claims = identity.verify(tokens[kind])
        assert claims["sub"] == sub
        assert identity.bearer_user(tokens[kind]).cognito_sub == sub


def test_tokens_from_another_pool_or_client_are_refused(identity, pool, moto):
    other = create_pool(moto)
    username, _ = signed_up(other)
    foreign = other.tokens(username, PASSWORD)["IdToken"]
    assert not identity.issued(foreign)
    with pytest.raises(TokenRefused, match="issuer"):
        identity.verify(foreign)
    # Same pool, another app client.
    client = pool.cognito.create_user_pool_client(
        UserPoolId=pool.pool_id,
        ClientName="other",
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"],
    )["UserPoolClient"]["ClientId"]
    name, _ = signed_up(pool)
    for kind in ("IdToken", "AccessToken"):
        token = pool.cognito.initiate_auth(
            ClientId=client,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": name, "PASSWORD": PASSWORD},
        )["AuthenticationResult"][kind]
        with pytest.raises(TokenRefused, match="another app client"):
            identity.verify(token)


def test_expired_tampered_and_unsigned_tokens_are_refused(identity, pool):
    username, _ = signed_up(pool)
    token = pool.tokens(username, PASSWORD)["IdToken"]
    assert identity.verify(resign(token))["sub"]  # re-signing alone keeps it good
    past = int(time.time()) - 7200
    with pytest.raises(TokenRefused, match="expired"):
        identity.verify(resign(token, iat=past, exp=past + 3600))
    with pytest.raises(TokenRefused, match="token_use"):
        identity.verify(resign(token, token_use="refresh"))
    with pytest.raises(TokenRefused):
        identity.verify(resign(token, iss=identity.issuer + "x"))

    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["cognito:username"] = "admin"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(TokenRefused, match="Signature"):
        identity.verify(f"{header}.{forged}.{signature}")

    unsigned = jwt.encode(claims, key=None, algorithm="none")
    with pytest.raises(TokenRefused, match="algorithm"):
        identity.verify(unsigned)
    hmac_signed = jwt.encode(claims, "s" * 32, algorithm="HS256", headers={"kid": "dummy"})
    with pytest.raises(TokenRefused, match="algorithm"):
        identity.verify(hmac_signed)
    with pytest.raises(TokenRefused, match="malformed"):
        identity.verify("not-a-token")


# ---- the key set ------------------------------------------------------------------------------


class KeyServer:
    """A JWKS document on loopback whose keys a test can rotate."""

    def __init__(self) -> None:
        self.keys: dict[str, rsa.RSAPrivateKey] = {}
        self.requests = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                owner.requests += 1
                body = json.dumps(owner.document()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/jwks.json"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def add(self) -> str:
        kid = uuid.uuid4().hex[:8]
        self.keys[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return kid

    def document(self) -> dict:
        keys = []
        for kid, key in self.keys.items():
            jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
            keys.append({**jwk, "kid": kid, "use": "sig", "alg": "RS256"})
        return {"keys": keys}


def test_the_key_set_is_cached_and_refetched_for_a_new_key():
    server = KeyServer()
    try:
        first = server.add()
        keys = PoolKeys(server.url, refetch_after=0)
        assert keys.key(first) is keys.key(first)
        assert server.requests == 1  # cached
        second = server.add()  # the pool rotates its keys
        assert keys.key(second).key_id == second
        assert server.requests == 2
        with pytest.raises(TokenRefused, match="no signing key"):
            keys.key("made-up")
        # A made-up key id refetches at most once per interval.
        slow = PoolKeys(server.url, refetch_after=3600)
        slow.key(first)
        before = server.requests
        for _ in range(5):
            with pytest.raises(TokenRefused):
                slow.key("made-up")
        assert server.requests == before
    finally:
        server.httpd.shutdown()
