"""Sign in with Cognito: the hosted UI's authorization-code flow (`app.access.hosted_ui`).

The flows a browser has begun live in its signed session, a few at most (one per tab that
began one), each found again by its `state` and used once. A sign-in that does not complete
gets a page saying what happened and how to start again; the detail goes to the log only.
"""

from __future__ import annotations

import logging

from flask import redirect, render_template, request, session, url_for

from app.access import audit, hosted_ui
from app.access.hosted_ui import Flow, SignInFailed
from app.access.policy import principal_for
from app.console import session as console_session
from app.console.blueprint import bp
from app.console.errors import render_error
from app.console.templating import base_url
from app.console.views_home import safe_next
from app.gate import requires

log = logging.getLogger(__name__)

FLOWS = "oauth"
MAX_FLOWS = 3
MAX_CODE = 2048

# reason -> (status, title, what happened and what to do).
PAGES = {
    hosted_ui.DENIED: (
        403,
        "Sign-in cancelled",
        "Cognito did not sign you in: the sign-in was cancelled or refused there.",
    ),
    hosted_ui.PROVIDER: (
        400,
        "Cognito could not sign you in",
        "Cognito turned the sign-in request down. If this keeps happening, tell an administrator.",
    ),
    hosted_ui.STATE: (
        400,
        "This sign-in has expired",
        "It took too long, was started in another browser, or was already used.",
    ),
    hosted_ui.CODE: (
        400,
        "This sign-in is no longer valid",
        "Each sign-in from Cognito works once, for a few minutes, and only in the browser "
        "that began it.",
    ),
    hosted_ui.TOKEN: (
        400,
        "The sign-in could not be verified",
        "Cognito's answer did not pass our checks, so nothing was signed in.",
    ),
    hosted_ui.UNKNOWN_USER: (
        403,
        "No account here for this sign-in",
        "Your Cognito account is not linked to a user of this registry. If you signed up a "
        "moment ago, wait a minute and try again; otherwise ask an administrator.",
    ),
    hosted_ui.MISCONFIGURED: (
        502,
        "Sign-in with Cognito is not working",
        "The registry and Cognito do not agree on their settings. Tell an administrator.",
    ),
}


def callback_url() -> str:
    """The redirect URI, exactly as the app client lists it among its callback URLs."""
    return base_url() + url_for("console.cognito_callback")


def _pending() -> list[dict]:
    flows = session.get(FLOWS)
    return flows if isinstance(flows, list) else []


def _keep(flow: Flow) -> None:
    live = [f for f in _pending() if (old := Flow.from_dict(f)) and not old.expired()]
    session[FLOWS] = [*live[-(MAX_FLOWS - 1) :], flow.as_dict()]


def _take(state: str) -> Flow | None:
    """The flow this browser began with `state`, forgotten as it is taken (used once)."""
    found, rest = None, []
    for raw in _pending():
        flow = Flow.from_dict(raw)
        if flow is None:
            continue
        if state and found is None and flow.state == state:
            found = flow
        else:
            rest.append(raw)
    if rest:
        session[FLOWS] = rest
    else:
        session.pop(FLOWS, None)
    return found if found is not None and not found.expired() else None


def _failed(reason: str, next_page: str | None = None):
    status, title, message = PAGES[reason]
    page = render_template(
        "console/sign_in_failed.html", title=title, message=message, next=next_page
    )
    return page, status


@bp.route("/sign-in/cognito")
@requires(None, "public")
def cognito_sign_in():
    """Off to the hosted UI, with a new flow remembered in this browser's session."""
    ui = hosted_ui.configured()
    if ui is None:
        return render_error(404)
    nxt = request.args.get("next")
    flow, authorize = ui.start(callback_url(), safe_next(nxt) if nxt else None)
    _keep(flow)
    return redirect(authorize)


@bp.route("/sign-in/cognito/callback")
@requires(None, "public")
def cognito_callback():
    """Where the hosted UI sends the browser back: with a code, or with an error."""
    ui = hosted_ui.configured()
    if ui is None:
        return render_error(404)
    flow = _take(request.args.get("state", ""))
    error = request.args.get("error")
    if error:
        log.info("hosted UI sign-in: cognito answered error=%r", error[:100])
        reason = hosted_ui.DENIED if error == "access_denied" else hosted_ui.PROVIDER
        return _failed(reason, flow.next_page if flow else None)
    if flow is None:
        log.info("hosted UI sign-in: no flow of this browser has that state")
        return _failed(hosted_ui.STATE)
    code = request.args.get("code", "")
    if not code or len(code) > MAX_CODE:
        log.info("hosted UI sign-in: the callback carries no usable code")
        return _failed(hosted_ui.CODE, flow.next_page)
    try:
        user = ui.finish(flow, code)
    except SignInFailed as exc:
        log.warning("hosted UI sign-in refused: %s", exc)
        return _failed(exc.reason, flow.next_page)
    console_session.begin(user)
    audit.login_succeeded(principal_for(user), "console-cognito")
    session["via"] = "cognito"
    return redirect(safe_next(flow.next_page))
