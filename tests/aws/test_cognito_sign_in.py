"""Sign in with Cognito: the console's authorization-code flow against a hosted-UI stand-in
(tests/support/hosted_ui.py) in front of a user pool served by moto, with a real Cargohold
(CARGOHOLD_IDENTITY=cognito, CARGOHOLD_COGNITO_DOMAIN set) on loopback.

The happy path runs in Debian's chromium; each way it can fail runs over HTTP and must end on
a page that says what happened, with nobody signed in."""

from __future__ import annotations

import time
import uuid
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

from tests.conftest import require_tool
from tests.console.conftest import Console
from tests.support.hosted_ui import HostedUI, allow_code_flow, resign
from tests.support.moto import create_pool
from tests.support.server import make_server
from tests.support.services import Backend

PASSWORD = "Corr3ct-horse-battery"
CALLBACK = "/sign-in/cognito/callback"


@pytest.fixture(scope="module")
def pool(moto):
    return create_pool(moto)


@pytest.fixture(scope="module")
def hosted(pool):
    ui = HostedUI(pool)
    yield ui
    ui.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory, pool, hosted):
    backend = Backend()
    env = {**pool.server_env(), **backend.env(), "CARGOHOLD_COGNITO_DOMAIN": hosted.url}
    srv = make_server(tmp_path_factory.mktemp("hosted-ui-registry"), env)
    # The app client's OAuth settings, as terraform/cognito.tf makes them for this host.
    allow_code_flow(pool, srv.url + CALLBACK, srv.url + "/")
    srv.start()
    yield srv
    srv.stop()
    backend.cleanup()


@pytest.fixture(autouse=True)
def well_behaved(hosted):
    """Each test starts with a stand-in that behaves as Cognito does."""
    hosted.claims, hosted.id_token, hosted.token_answer = {}, None, None
    yield


def person(pool) -> str:
    """A confirmed pool account no Cargohold user is linked to yet."""
    username = f"dora{uuid.uuid4().hex[:8]}"
    pool.sign_up(username, PASSWORD, f"{username}@example.com")
    return username


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


class Flow:
    """One browser going through the hosted UI, step by step, over HTTP."""

    def __init__(self, server, browser: Console | None = None, next_page: str | None = None):
        self.server = server
        self.browser = browser or Console(server.url)
        path = "/sign-in/cognito" + (f"?{urlencode({'next': next_page})}" if next_page else "")
        r = self.browser.get(path)
        assert r.status_code == 302, r.text[:300]
        self.authorize = r.headers["Location"]
        self.params = query_of(self.authorize)

    def at_hosted_ui(self, username: str, password: str = PASSWORD, action: str = "sign-in"):
        """The person signs in (or cancels) at the hosted UI: the callback URL it sends back."""
        page = requests.get(self.authorize, allow_redirects=False, timeout=30)
        assert page.status_code == 200, page.text
        login = urlsplit(self.authorize)._replace(path="/login", query="").geturl()
        form = {**self.params, "username": username, "password": password, "action": action}
        r = requests.post(login, data=form, allow_redirects=False, timeout=30)
        assert r.status_code == 302, r.text
        return r.headers["Location"]

    def back(self, callback: str) -> requests.Response:
        assert callback.startswith(self.server.url + CALLBACK), callback
        return self.browser.get(callback[len(self.server.url) :])


def signed_in_as(browser: Console) -> str | None:
    r = browser.get("/account")
    if r.status_code != 200:
        return None
    return r.text.split("<h1>Account: ", 1)[1].split("<", 1)[0]


def assert_failed_page(r: requests.Response, status: int, title: str) -> None:
    assert r.status_code == status, (r.status_code, r.text[:500])
    assert r.headers["Content-Type"].startswith("text/html")
    assert f"<h1>{title}</h1>" in r.text, r.text[:800]
    assert "Sign in with Cognito again" in r.text
    # Nothing of the token, the code or the exchange leaks into the page.
    for word in ("Traceback", "invalid_grant", "nonce", "eyJ"):
        assert word not in r.text


# ---- the happy path ------------------------------------------------------------------------


def test_the_pkce_challenge_is_rfc_7636s_s256():
    from app.access.hosted_ui import challenge

    # RFC 7636, appendix B.
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_the_sign_in_page_offers_cognito(server):
    page = Console(server.url).get("/")
    assert page.status_code == 200
    assert 'href="/sign-in/cognito"' in page.text and "Sign in with Cognito" in page.text
    # Local accounts still sign in with their password on the same page.
    assert 'name="password"' in page.text


def test_the_authorize_request_carries_pkce_state_nonce_and_the_exact_callback(server, pool):
    flow = Flow(server)
    p = flow.params
    assert flow.authorize.startswith(f"{flow.server.env['CARGOHOLD_COGNITO_DOMAIN']}/oauth2/")
    assert p["response_type"] == "code" and p["client_id"] == pool.client_id
    assert p["redirect_uri"] == server.url + CALLBACK
    assert p["code_challenge_method"] == "S256" and len(p["code_challenge"]) == 43
    assert len(p["state"]) >= 32 and len(p["nonce"]) >= 32 and p["state"] != p["nonce"]
    assert set(p["scope"].split()) == {"openid", "email"}
    # Every flow is new.
    again = Flow(server, flow.browser).params
    assert again["state"] != p["state"] and again["code_challenge"] != p["code_challenge"]


def test_signing_in_at_the_hosted_ui_links_the_user_and_starts_a_session(server, pool, hosted):
    username = person(pool)
    flow = Flow(server, next_page="/search?q=x")
    r = flow.back(flow.at_hosted_ui(username))
    assert r.status_code == 302 and r.headers["Location"] == "/search?q=x"
    assert signed_in_as(flow.browser) == username
    ((linked,),) = server.sql("SELECT cognito_sub FROM users WHERE username = ?", username)
    assert linked == pool.attributes(username)["sub"]
    # The code went to the token endpoint with the PKCE verifier and the same redirect URI.
    sent = hosted.token_requests[-1]
    assert sent["redirect_uri"] == server.url + CALLBACK
    assert sent["grant_type"] == "authorization_code" and 43 <= len(sent["code_verifier"]) <= 128
    # A second sign-in finds the same user.
    again = Flow(server)
    assert again.back(again.at_hosted_ui(username)).status_code == 302
    assert server.sql("SELECT count(*) FROM users WHERE username = ?", username) == [(1,)]


def test_changing_the_password_ends_every_other_session(server, pool):
    username = person(pool)
    first, second = Flow(server), Flow(server)
    first.back(first.at_hosted_ui(username))
    second.back(second.at_hosted_ui(username))
    assert signed_in_as(first.browser) == signed_in_as(second.browser) == username
    r = first.browser.post(
        "/account/password",
        {
            "current_password": PASSWORD,
            "new_password": "N3w-horse-battery",
            "confirm_password": "N3w-horse-battery",
        },
    )
    assert r.status_code == 302
    assert signed_in_as(first.browser) == username
    assert signed_in_as(second.browser) is None
    # The pool has the new password: the hosted UI signs in with it.
    third = Flow(server)
    assert third.back(third.at_hosted_ui(username, "N3w-horse-battery")).status_code == 302
    assert signed_in_as(third.browser) == username


def test_signing_out_signs_out_of_the_hosted_ui_too(server, pool, hosted):
    username = person(pool)
    flow = Flow(server)
    flow.back(flow.at_hosted_ui(username))
    assert signed_in_as(flow.browser) == username
    r = flow.browser.post("/sign-out")
    assert r.status_code == 302
    logout = r.headers["Location"]
    assert logout.startswith(f"{hosted.url}/logout?")
    assert query_of(logout) == {"client_id": pool.client_id, "logout_uri": server.url + "/"}
    back = requests.get(logout, allow_redirects=False, timeout=30)
    assert back.status_code == 302 and back.headers["Location"] == server.url + "/"
    assert signed_in_as(flow.browser) is None
    # A password sign-in signs out here only.
    local = Console(server.url)
    local.sign_in("alice", server.users["alice"])
    assert local.post("/sign-out").headers["Location"] == "/"


# ---- every way it fails --------------------------------------------------------------------


def test_cancelling_at_the_hosted_ui(server, pool):
    flow = Flow(server)
    r = flow.back(flow.at_hosted_ui(person(pool), action="cancel"))
    assert_failed_page(r, 403, "Sign-in cancelled")
    assert signed_in_as(flow.browser) is None


def test_an_error_cognito_sends_back(server):
    flow = Flow(server)
    r = flow.browser.get(
        f"{CALLBACK}?{urlencode({'error': 'invalid_scope', 'state': flow.params['state']})}"
    )
    assert_failed_page(r, 400, "Cognito could not sign you in")


def test_a_wrong_or_missing_state(server, pool):
    flow = Flow(server)
    callback = flow.at_hosted_ui(person(pool))
    q = query_of(callback)
    for query in (
        {"code": q["code"], "state": "forged" + q["state"]},
        {"code": q["code"]},
        {},
    ):
        r = flow.browser.get(f"{CALLBACK}?{urlencode(query)}")
        assert_failed_page(r, 400, "This sign-in has expired")
    assert signed_in_as(flow.browser) is None


def test_a_callback_in_another_browser_signs_no_one_in(server, pool):
    # Login CSRF: someone's own callback URL, opened in the victim's browser.
    flow = Flow(server)
    callback = flow.at_hosted_ui(person(pool))
    victim = Console(server.url)
    Flow(server, victim)  # the victim has begun a sign-in of their own
    assert_failed_page(victim.get(callback[len(server.url) :]), 400, "This sign-in has expired")
    assert signed_in_as(victim) is None


def test_a_code_injected_into_another_flow_fails_its_pkce_check(server, pool):
    # The attacker's code with the victim's state: the verifier is the victim's, not the
    # attacker's, so the token endpoint refuses the code.
    attacker = Flow(server)
    code = query_of(attacker.at_hosted_ui(person(pool)))["code"]
    victim = Flow(server)
    r = victim.browser.get(
        f"{CALLBACK}?{urlencode({'code': code, 'state': victim.params['state']})}"
    )
    assert_failed_page(r, 400, "This sign-in is no longer valid")
    assert signed_in_as(victim.browser) is None


def test_a_replayed_callback_or_code(server, pool):
    username = person(pool)
    flow = Flow(server)
    callback = flow.at_hosted_ui(username)
    assert flow.back(callback).status_code == 302
    assert signed_in_as(flow.browser) == username
    flow.browser.post("/sign-out")
    # The same callback again: its flow was used up.
    assert_failed_page(flow.back(callback), 400, "This sign-in has expired")
    # The used code in a new flow of the same browser: the token endpoint refuses it.
    fresh = Flow(server, flow.browser)
    code = query_of(callback)["code"]
    r = flow.browser.get(f"{CALLBACK}?{urlencode({'code': code, 'state': fresh.params['state']})}")
    assert_failed_page(r, 400, "This sign-in is no longer valid")
    assert signed_in_as(flow.browser) is None


BAD_TOKENS = {
    "another nonce": lambda tokens: resign(tokens["IdToken"], nonce="not-this-flows"),
    "no nonce": lambda tokens: tokens["IdToken"],  # moto's own token, as InitiateAuth made it
    "expired": lambda tokens: resign(
        tokens["IdToken"], iat=int(time.time()) - 7200, exp=int(time.time()) - 3600
    ),
    "another audience": lambda tokens: resign(tokens["IdToken"], aud="another-app-client"),
    "another issuer": lambda tokens: resign(
        tokens["IdToken"], iss="https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Other"
    ),
    "an access token": lambda tokens: tokens["AccessToken"],
    "a forged signature": lambda tokens: tokens["IdToken"][:-8] + "AAAAAAAA",
    "not a token": lambda tokens: "not-a-token",
}


@pytest.mark.parametrize("bad", sorted(BAD_TOKENS))
def test_an_id_token_that_does_not_verify(server, pool, hosted, bad):
    flow = Flow(server)
    callback = flow.at_hosted_ui(person(pool))
    make = BAD_TOKENS[bad]
    nonce = flow.params["nonce"]

    def id_token(tokens: dict) -> str:
        token = make(tokens)
        # Keep the flow's nonce where the case is about something else.
        if bad not in ("another nonce", "no nonce", "an access token", "not a token"):
            token = resign(token, nonce=nonce) if bad != "a forged signature" else token
        return token

    hosted.id_token = id_token
    r = flow.back(callback)
    assert_failed_page(r, 400, "The sign-in could not be verified")
    assert signed_in_as(flow.browser) is None


def test_a_pool_account_named_like_a_local_user_gets_nothing(server, pool):
    # alice is a local account of this server; a pool account of that name is not her.
    pool.sign_up("alice", PASSWORD, "intruder@example.com")
    flow = Flow(server)
    r = flow.back(flow.at_hosted_ui("alice"))
    assert_failed_page(r, 403, "No account here for this sign-in")
    assert signed_in_as(flow.browser) is None
    assert server.sql("SELECT cognito_sub FROM users WHERE username = 'alice'") == [(None,)]


@pytest.mark.parametrize(
    ("answer", "status", "title"),
    [
        ((500, b'{"error": "server_error"}'), 503, "Temporarily unavailable"),
        ((200, b'{"access_token": "x"}'), 502, "Sign-in with Cognito is not working"),
        ((401, b'{"error": "invalid_client"}'), 502, "Sign-in with Cognito is not working"),
        ((200, b"not json"), 502, "Sign-in with Cognito is not working"),
        # Larger than any token answer: the fetch stops reading and gives up.
        ((200, b'{"id_token": "' + b"A" * 200_000 + b'"}'), 503, "Temporarily unavailable"),
    ],
)
def test_a_token_endpoint_that_misbehaves(server, pool, hosted, answer, status, title):
    flow = Flow(server)
    callback = flow.at_hosted_ui(person(pool))
    hosted.token_answer = lambda: answer
    r = flow.back(callback)
    assert r.status_code == status, r.text[:500]
    assert f"<h1>{title}</h1>" in r.text and "Traceback" not in r.text
    if status == 503:
        assert r.headers["Retry-After"]
    assert signed_in_as(flow.browser) is None


def test_an_unreachable_token_endpoint_is_an_outage(server, pool, hosted):
    flow = Flow(server)
    callback = flow.at_hosted_ui(person(pool))

    def hang_up():
        raise ConnectionResetError

    hosted.token_answer = hang_up
    r = flow.back(callback)
    assert r.status_code == 503 and "<h1>Temporarily unavailable</h1>" in r.text


# ---- in a real browser ---------------------------------------------------------------------


def test_sign_in_with_cognito_in_chromium(server, pool):
    require_tool("chromium")
    from playwright.sync_api import sync_playwright

    from tests.console.test_browser import CHROMIUM, SHOTS

    username = person(pool)
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_context(base_url=server.url).new_page()
            page.goto("/account")  # a page that needs a session: to sign in, then back here
            page.wait_for_selector("text=Sign in with Cognito")
            page.screenshot(path=str(SHOTS / "sign-in-cognito.png"), full_page=True)
            page.click("text=Sign in with Cognito")
            page.wait_for_selector("h1:has-text('Cognito hosted UI')")
            page.fill("input[name=username]", username)
            page.fill("input[name=password]", PASSWORD)
            page.click("button:has-text('Sign in')")
            # Back at Cargohold, signed in, on the page first asked for.
            page.wait_for_selector(f"h1:has-text('Account: {username}')")
            assert page.url == f"{server.url}/account"
            page.goto("/")
            page.wait_for_selector(f"text=Welcome, {username}")
            page.click("button:has-text('Sign out')")
            page.wait_for_selector("text=You are signed out.")
            assert page.url == f"{server.url}/"
            assert page.locator("text=Sign in with Cognito").count() == 1
        finally:
            browser.close()
