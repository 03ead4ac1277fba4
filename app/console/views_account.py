"""The signed-in person's account: password, personal access tokens, invitations."""

from __future__ import annotations

from datetime import timedelta

from flask import redirect, render_template, request, session, url_for

from app.access import ACCOUNT_MANAGE, ACCOUNT_READ, access_tokens, accounts, tenancy
from app.auth.credentials import keep_failure_count
from app.console import session as console_session
from app.console.blueprint import bp, form_of
from app.console.templating import notice
from app.errors import Invalid, NotFound, TooManyRequests
from app.gate import requires
from app.models import AccessToken, Organisation, db
from app.models.base import utcnow

EXPIRY_CHOICES = (7, 30, 90, 365)


def _me():
    user = console_session.current_user()
    assert user is not None  # the gate admits only signed-in people here
    return user


@bp.route("/account")
@requires(ACCOUNT_READ, "site")
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


@bp.route("/account/tokens", methods=["POST"])
@requires(ACCOUNT_MANAGE, "site")
@form_of("console.account")
def create_token():
    user = _me()
    days_raw = request.form.get("expires_in_days", "")
    days = int(days_raw) if days_raw.isdigit() and 0 < int(days_raw) <= 3650 else None
    registries = [r.strip() for r in request.form.get("registries", "").split(",") if r.strip()]
    row, secret = access_tokens.create(
        user,
        request.form.get("name", ""),
        scope=request.form.get("scope", "read-write"),
        registries=registries or None,
        expires_at=utcnow() + timedelta(days=days) if days else None,
    )
    session["new_token"] = {"name": row.name, "secret": secret}
    return redirect(url_for("console.account") + "#new-token")


@bp.route("/account/tokens/<int:token_id>/revoke", methods=["POST"])
@requires(ACCOUNT_MANAGE, "site")
@form_of("console.account")
def revoke_token(token_id: int):
    row = db.session.get(AccessToken, token_id)
    if row is None or row.user_id != _me().id or row.revoked_at is not None:
        raise NotFound("That token does not exist or is already revoked.")
    access_tokens.revoke(row)
    notice(f"Token {row.name!r} revoked.")
    return redirect(url_for("console.account"))


@bp.route("/account/password", methods=["POST"])
@requires(ACCOUNT_MANAGE, "site")
@form_of("console.account")
def change_password():
    """The account's own change (`accounts.change_password`): it moves the credential epoch on,
    which ends every other console session and every token minted from the old password; this
    session carries on with the new epoch."""
    user = _me()
    new = request.form.get("new_password", "")
    if new != request.form.get("confirm_password", ""):
        raise Invalid("The new passwords do not match.")
    try:
        accounts.change_password(user, request.form.get("current_password", ""), new)
    except accounts.WrongPassword as exc:
        keep_failure_count()  # counted by change_password
        notice(str(exc).capitalize() + ".", "error")
        return redirect(url_for("console.account"))
    except TooManyRequests as exc:
        notice(str(exc).capitalize() + ".", "error")
        return redirect(url_for("console.account"))
    console_session.refresh_credentials(user)
    notice("Password changed. Every other sign-in has ended.")
    return redirect(url_for("console.account"))


@bp.route("/account/invitations/<int:invitation_id>/<any(accept,decline):answer>", methods=["POST"])
@requires(ACCOUNT_MANAGE, "site")
@form_of("console.account")
def answer_invitation(invitation_id: int, answer: str):
    inv = tenancy.answer(invitation_id, _me(), accept=answer == "accept")
    org = db.session.get(Organisation, inv.organisation_id)
    if answer == "accept":
        notice(f"You joined {org.name} as {inv.role}.")
        return redirect(url_for("console.organisation", org=org.name))
    notice(f"Invitation to {org.name} declined.")
    return redirect(url_for("console.account"))
