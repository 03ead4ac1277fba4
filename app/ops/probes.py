"""The operations blueprint: liveness and readiness probes, the metrics page, and the hooks that
feed the access log, wired into the app by `init_app`."""

from __future__ import annotations

import hmac
import os
from pathlib import Path

from flask import Blueprint, Flask, Response, current_app, g, jsonify, request
from sqlalchemy import text
from werkzeug.middleware.proxy_fix import ProxyFix

from app.gate import requires
from app.ops import logs, metrics
from app.ops.access import DIGEST, ORG, REPOSITORY, ROUTE, USER, Observed
from app.ops.schema import current_revisions, head_revisions

bp = Blueprint("ops", __name__)

# Who may call each route here, for the authorization table: "public", or "metrics" (public
# unless CARGOHOLD_METRICS_TOKEN is set, then that bearer token).
ACCESS = {"healthz": "public", "readyz": "public", "metrics": "metrics"}
# A digest no blob has: asking the store for it is a round trip that changes nothing.
_PROBE_DIGEST = "sha256:" + "0" * 64


@bp.route("/healthz")
@requires(None, "public")
def healthz():
    """The process answers: restart it if not. Touches no backend on purpose."""
    return jsonify({"status": "ok"})


@bp.route("/readyz")
@requires(None, "public")
def readyz():
    """Send traffic here only when the database and the blob store answer and the schema is
    the one this code expects."""
    checks = {"database": _check_database(), "storage": _check_storage()}
    checks["migrations"] = _check_migrations() if checks["database"] == "ok" else "unknown"
    ready = all(v == "ok" for v in checks.values())
    resp = jsonify({"status": "ready" if ready else "unavailable", "checks": checks})
    resp.status_code = 200 if ready else 503
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _check_database() -> str:
    from app.models import db

    try:
        db.session.execute(text("SELECT 1"))
        return "ok"
    except Exception as exc:
        db.session.rollback()
        return f"unreachable: {exc.__class__.__name__}"


def _check_storage() -> str:
    store = current_app.extensions["cargohold.store"]
    root = getattr(store, "root", None)
    if isinstance(root, Path) and not (root.is_dir() and os.access(root, os.W_OK | os.X_OK)):
        return f"unreachable: {root} is not a writable folder"
    try:
        store.stat(_PROBE_DIGEST)
        return "ok"
    except Exception as exc:
        return f"unreachable: {exc.__class__.__name__}"


def _check_migrations() -> str:
    from app import MIGRATIONS
    from app.models import db

    want, have = head_revisions(MIGRATIONS), current_revisions(db.engine)
    if have == want:
        return "ok"
    return f"schema at {','.join(sorted(have)) or 'nothing'}, code expects {','.join(sorted(want))}"


@bp.route("/metrics", endpoint="metrics")
@requires(None, "public")  # the metrics token, when set, is checked here
def metrics_page():
    token = current_app.extensions["cargohold.settings"].metrics_token
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        # Bytes: compare_digest refuses str with non-ASCII characters, which a header may hold.
        presented = given.strip().encode("utf-8", "surrogateescape")
        if scheme.lower() != "bearer" or not hmac.compare_digest(presented, token.encode()):
            resp = jsonify({"errors": [{"code": "UNAUTHORIZED", "message": "metrics token"}]})
            resp.status_code = 401
            resp.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return resp
    body, content_type = metrics.exposition()
    return Response(body, content_type=content_type, headers={"Cache-Control": "no-store"})


def _describe_request(_exc: BaseException | None = None) -> None:
    """Leave what the access log and metrics need in the WSGI environ: the route's name (never
    the raw path), the caller and the repository or organisation the request was about."""
    environ = request.environ
    rule = request.url_rule
    args = request.view_args or {}
    route = rule.endpoint if rule is not None else "unmatched"
    if route == "oci.dispatch":
        route = _oci_route(args.get("rest", ""), environ)
    else:
        if "org" in args:
            environ[ORG] = args["org"]
        if "org" in args and "registry" in args and "project" in args:
            environ[REPOSITORY] = f"{args['org']}/{args['registry']}/{args['project']}"
    environ[ROUTE] = route
    caller = g.get("caller")
    if caller is not None and caller.principal.authenticated:
        environ[USER] = caller.principal.name


def _oci_route(rest: str, environ: dict) -> str:
    from app.oci.routes import TABLE

    method = "GET" if request.method == "HEAD" else request.method
    for pattern, handlers in TABLE:
        m = pattern.match(rest)
        if m is None:
            continue
        parts = m.group("name").split("/")
        environ[REPOSITORY] = m.group("name")
        environ[ORG] = parts[0]
        ref = m.groupdict().get("digest") or m.groupdict().get("reference") or ""
        ref = ref if ":" in ref else request.args.get("digest", "")
        if ":" in ref and len(ref) <= 200:
            environ[DIGEST] = ref
        handler = handlers.get(method)
        return f"oci:{handler.__name__}" if handler else "oci.unsupported"
    return "oci.unmatched"


def count_backend_error(exc: BaseException) -> None:
    """Called by the outage handlers: one more storage or database error."""
    from app.storage import StorageUnavailable

    if isinstance(exc, StorageUnavailable):
        driver = current_app.extensions["cargohold.settings"].storage
        metrics.STORAGE_ERRORS.labels(driver).inc()
    else:
        metrics.DATABASE_ERRORS.inc()


def init_app(app: Flask) -> None:
    settings = app.extensions["cargohold.settings"]
    logs.configure(settings.log_format)
    app.register_blueprint(bp)
    app.teardown_request(_describe_request)
    app.wsgi_app = Observed(app.wsgi_app)  # type: ignore[method-assign]
    if settings.trusted_proxies > 0:
        # Outermost, so the access log, throttling and generated URLs all see the client.
        n = settings.trusted_proxies
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=n, x_proto=n, x_host=n, x_port=n
        )
