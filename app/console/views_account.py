"""The signed-in person's account: password, personal access tokens, invitations."""

from __future__ import annotations

from datetime import timedelta

from flask import current_app, redirect, render_template, request, session, url_for

from app.access import ACCOUNT_MANAGE, ACCOUNT_READ, access_tokens, tenancy, throttle
from app.console import session as console_session
from app.console.gate import page
from app.console.templating import notice
from app.models import AccessToken, Organisation, db
from app.models.base import utcnow

EXPIRY_CHOICES = (7, 30, 90, 365)


def _me():
    user = console_session.current_user()
    assert user is not None  # the gate admits only signed-in people here
    return user


@page("/account", ACCOUNT_READ, "site")
def account():
    user = _me()
    invitations = tenancy.invitations_for(user)
    org_names = dict(
        db.session.execute(
            db.select(Organisation.id, Organisation.name).where(
                Organisation.id.in_([i.organisation_id for i in invitations])
            )
        ).all()
    )
    # The new token's secret, shown once: popped from the session as it is rendered.
    fresh = session.pop("new_token", None)
    return render_template(
        "console/account.html",
        tokens=access_tokens.of_user(user),
        invitations=invitations,
        org_names=org_names,
        fresh=fresh,
        expiry_choices=EXPIRY_CHOICES,
        now=utcnow(),
    )


@page("/account/tokens", ACCOUNT_MANAGE, "site", methods=("POST",))
def create_token():
    user = _me()
    days_raw = request.form.get("expires_in_days", "")
    days = int(days_raw) if days_raw.isdigit() and 0 < int(days_raw) <= 3650 else None
    registries = [r.strip() for r in request.form.get("registries", "").split(",") if r.strip()]
    try:
        row, secret = access_tokens.create(
            user,
            request.form.get("name", ""),
            scope=request.form.get("scope", "read-write"),
            registries=registries or None,
            expires_at=utcnow() + timedelta(days=days) if days else None,
        )
    except ValueError as exc:
        notice(str(exc), "error")
        return redirect(url_for("console.account"))
    session["new_token"] = {"name": row.name, "secret": secret}
    return redirect(url_for("console.account") + "#new-token")


@page("/account/tokens/<int:token_id>/revoke", ACCOUNT_MANAGE, "site", methods=("POST",))
def revoke_token(token_id: int):
    row = db.session.get(AccessToken, token_id)
    if row is None or row.user_id != _me().id or row.revoked_at is not None:
        notice("That token does not exist or is already revoked.", "error")
    else:
        access_tokens.revoke(row)
        notice(f"Token {row.name!r} revoked.")
    return redirect(url_for("console.account"))


def _change_password(user, current: str, new: str) -> None:
    """Checks the current password, then sets the new one through the identity provider. The
    new hash alone ends every other console session (they hold its fingerprint)."""
    identity = current_app.extensions["cargohold.identity"]
    # Guessing the current password here is throttled like any other login.
    if throttle.retry_after(user.username, request.remote_addr) is not None:
        raise ValueError("too many failed attempts; try again in a few minutes")
    if identity.authenticate(user.username, current) is None:
        throttle.failed(user.username, request.remote_addr)
        raise ValueError("the current password is wrong")
    identity.set_password(user, new)
    db.session.commit()


@page("/account/password", ACCOUNT_MANAGE, "site", methods=("POST",))
def change_password():
    user = _me()
    new = request.form.get("new_password", "")
    if new != request.form.get("confirm_password", ""):
        notice("The new passwords do not match.", "error")
        return redirect(url_for("console.account"))
    try:
        _change_password(user, request.form.get("current_password", ""), new)
    except ValueError as exc:
        notice(str(exc).capitalize() + ".", "error")
        return redirect(url_for("console.account"))
    console_session.refresh_credentials(user)
    notice("Password changed. Every other sign-in has ended.")
    return redirect(url_for("console.account"))


@page(
    "/account/invitations/<int:invitation_id>/<any(accept,decline):answer>",
    ACCOUNT_MANAGE,
    "site",
    methods=("POST",),
)
def answer_invitation(invitation_id: int, answer: str):
    try:
        inv = tenancy.answer(invitation_id, _me(), accept=answer == "accept")
    except LookupError:
        notice("That invitation does not exist or has expired.", "error")
        return redirect(url_for("console.account"))
    org = db.session.get(Organisation, inv.organisation_id)
    if answer == "accept":
        notice(f"You joined {org.name} as {inv.role}.")
        return redirect(url_for("console.organisation", org=org.name))
    notice(f"Invitation to {org.name} declined.")
    return redirect(url_for("console.account"))
