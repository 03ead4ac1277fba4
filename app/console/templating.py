"""What every console template may use: the signed-in user, the CSRF field, small formatters."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlsplit

from flask import current_app, flash, request

from app.access import hosted_ui
from app.console import csrf
from app.console.blueprint import bp
from app.console.session import current_user


def host() -> str:
    """The registry host clients should use: the public URL's host, else this request's."""
    public = current_app.extensions["cargohold.settings"].public_url
    return urlsplit(public).netloc if public else request.host


def base_url() -> str:
    public = current_app.extensions["cargohold.settings"].public_url
    return public or request.host_url.rstrip("/")


def insecure() -> bool:
    return not base_url().startswith("https://")


@bp.app_template_filter("filesize")
def filesize(n: int | None) -> str:
    if n is None:
        return "—"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


@bp.app_template_filter("short")
def short_digest(digest: str | None) -> str:
    if not digest:
        return ""
    algorithm, _, hexpart = digest.partition(":")
    return f"{algorithm}:{hexpart[:12]}"


@bp.app_template_filter("when")
def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "—"


@bp.app_context_processor
def _globals() -> dict:
    return {
        "me": current_user(),
        "csrf_field": csrf.FIELD,
        "csrf_token": csrf.token,
        "registry_host": host,
        "cognito_sign_in": lambda: hosted_ui.configured() is not None,
    }


def notice(message: str, category: str = "ok") -> None:
    flash(message, category)
