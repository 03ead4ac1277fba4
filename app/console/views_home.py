"""Sign in and out, the home page, and search."""

from __future__ import annotations

from flask import current_app, redirect, render_template, request, session, url_for
from sqlalchemy import case, select

from app.access import ACCOUNT_READ, access_tokens, audit, hosted_ui, throttle
from app.access.policy import principal_for, visible_registries
from app.auth.credentials import record_failed_login
from app.console import session as console_session
from app.console.blueprint import bp
from app.console.pagination import pager
from app.console.templating import base_url, notice
from app.errors import TooManyRequests
from app.gate import requires
from app.models import (
    Membership,
    Organisation,
    PythonFile,
    PythonProject,
    Registry,
    RegistryGrant,
    Repository,
    Tag,
    db,
)
from app.ops.metrics import LOGIN_FAILURES

RECENT = 15


def safe_next(target: str | None) -> str:
    """Where to go after signing in."""
    # Only paths on this site: never "//elsewhere" or "https://elsewhere".
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("console.home")


@bp.route("/")
@requires(None, "public")
def home():
    """Home when signed in; the sign-in page otherwise."""
    user = console_session.current_user()
    if user is None:
        return render_template("console/sign_in.html", next=None)
    orgs = db.session.execute(
        select(Organisation, Membership.role)
        .join(Membership, Membership.organisation_id == Organisation.id)
        .where(Membership.user_id == user.id)
        .order_by(Organisation.name)
    ).all()
    principal = console_session.current_principal()
    member_registries = (
        select(Registry.id)
        .join(Membership, Membership.organisation_id == Registry.organisation_id)
        .where(Membership.user_id == user.id)
    )
    recent = db.session.execute(
        select(Tag.name, Tag.updated_at, Repository.name)
        .join(Repository, Repository.id == Tag.repository_id)
        .where(
            Repository.registry_id.in_(member_registries),
            Repository.registry_id.in_(visible_registries(principal)),
        )
        .order_by(Tag.updated_at.desc(), Tag.id.desc())
        .limit(RECENT)
    ).all()
    # Registries shared with me through a grant, in organisations I do not belong to.
    shared = db.session.execute(
        select(Organisation.name, Registry.name, RegistryGrant.role)
        .join(Registry, Registry.organisation_id == Organisation.id)
        .join(RegistryGrant, RegistryGrant.registry_id == Registry.id)
        .where(RegistryGrant.user_id == user.id, Registry.id.not_in(member_registries))
        .order_by(Organisation.name, Registry.name)
    ).all()
    return render_template("console/home.html", orgs=orgs, recent=recent, shared=shared)


@bp.route("/sign-in", methods=["GET", "POST"])
@requires(None, "public")
def sign_in():
    """Local accounts, throttled exactly as every other login: failures count against the
    credential tried (`throttle.account`) and the address, at the same commit point."""
    nxt = request.values.get("next")
    if request.method == "GET":
        if console_session.current_user() is not None:
            return redirect(safe_next(nxt))
        return render_template("console/sign_in.html", next=nxt)
    username = request.form.get("username", "").strip()[:64]
    password = request.form.get("password", "")
    address = request.remote_addr
    account = throttle.account(username, password)
    before = throttle.standing(account, address)
    if before.wait is not None:
        LOGIN_FAILURES.labels("throttled").inc()
        audit.login_throttled(username, "console")
        raise TooManyRequests(
            "Too many failed sign-ins. Try again in a few minutes.",
            headers={"Retry-After": str(before.wait)},
        )
    user = None
    # Access tokens and robots are for clients; a person signs in with their password.
    if username and password and not access_tokens.looks_like_token(password):
        identity = current_app.extensions["cargohold.identity"]
        user = identity.authenticate(username, password)
    if user is None or user.is_robot:
        record_failed_login(account, address, username, "console")
        notice("Wrong username or password.", "error")
        return render_template("console/sign_in.html", next=nxt, username=username), 401
    throttle.succeeded(account, before)
    console_session.begin(user)
    audit.login_succeeded(principal_for(user), "console")
    return redirect(safe_next(nxt))


@bp.route("/sign-out", methods=["POST"])
@requires(None, "public")
def sign_out():
    target = url_for("console.home")
    ui = hosted_ui.configured()
    if ui is not None and session.get("via") == "cognito":
        # A session begun at the hosted UI ends there too, or its own session would sign the
        # person straight back in.
        target = ui.logout_url(base_url() + target)
    console_session.end()
    notice("You are signed out.")
    return redirect(target)


@bp.route("/search")
@requires(ACCOUNT_READ, "site")
def search():
    """Repositories, tags and Python projects the caller may see, prefix matches first."""
    q = request.args.get("q", "").strip()[:100]
    pg = pager()
    results: dict[str, list] = {"repositories": [], "tags": [], "projects": []}
    more = False
    if q:
        visible = visible_registries(console_session.current_principal())
        pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        prefix = pattern[1:]

        def run(query, column):
            first = case((column.like(prefix, escape="\\"), 0), else_=1)
            rows = db.session.execute(
                query.where(column.like(pattern, escape="\\"))
                .order_by(first, column)
                .offset(pg.offset)
                .limit(pg.per_page + 1)
            ).all()
            return pg.window(rows)

        reg_org = (Registry, Organisation.name)
        results["repositories"], m1 = run(
            select(Repository.name).where(Repository.registry_id.in_(visible)), Repository.name
        )
        results["tags"], m2 = run(
            select(Tag.name, Repository.name)
            .join(Repository, Repository.id == Tag.repository_id)
            .where(Repository.registry_id.in_(visible)),
            Tag.name,
        )
        live = select(PythonFile.project_id).where(PythonFile.deleted_at.is_(None))
        results["projects"], m3 = run(
            select(PythonProject.name, *reg_org)
            .join(Registry, Registry.id == PythonProject.registry_id)
            .join(Organisation, Organisation.id == Registry.organisation_id)
            .where(PythonProject.registry_id.in_(visible), PythonProject.id.in_(live)),
            PythonProject.name,
        )
        more = m1 or m2 or m3
    return render_template("console/search.html", q=q, results=results, pg=pg, more=more)
