"""Cargohold: a multi-tenant, OCI-native artifact registry."""

from __future__ import annotations

import re
from pathlib import Path

from flask import Flask, jsonify, request
from flask_migrate import Migrate
from sqlalchemy import event
from sqlalchemy.engine import Engine

from app.config import Settings
from app.filemodes import private_dir, private_file
from app.models import db

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
# A Python index's URLs, which speak PyPI's protocol: /api/v1/<org>/<registry>/python[/...].
PYPI_PATH = re.compile(r"/api/v1/[^/]+/[^/]+/python(/|$)")


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # WAL lets readers and the writer of several gunicorn workers proceed together;
    # busy_timeout turns lock contention into a short wait instead of an error, so it comes
    # first: switching a new database to WAL needs a lock another starting process may hold.
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cur = dbapi_connection.cursor()
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env()
    app = Flask(__name__)
    private_dir(settings.data_dir)
    if not settings.database_url:
        private_file(settings.data_dir / "cargohold.db")
    app.config["SQLALCHEMY_DATABASE_URI"] = settings.resolved_database_url()
    # A server's connections can go stale (restarts, failovers); a SQLite file's cannot, and
    # the ping is a round trip on every request.
    pre_ping = not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite")
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {"pool_pre_ping": pre_ping}
    token_key = settings.resolved_token_key()
    app.config["SECRET_KEY"] = token_key
    # Blob bodies stream through request.stream; nothing may read them into form data.
    app.config["MAX_FORM_MEMORY_SIZE"] = 1024 * 1024

    db.init_app(app)
    Migrate(app, db, directory=str(MIGRATIONS))

    from app.auth.tokens import TokenIssuer
    from app.storage import create_store

    app.extensions["cargohold.settings"] = settings
    app.extensions["cargohold.store"] = create_store(settings)
    app.extensions["cargohold.identity"] = _identity_provider(settings)
    app.extensions["cargohold.tokens"] = TokenIssuer(
        key=token_key,
        service=settings.service,
        ttl=settings.token_ttl,
        refresh_ttl=settings.refresh_ttl,
    )

    from app import gate
    from app.api import openapi as _openapi  # noqa: F401 - registers /api/v1/openapi.json
    from app.api import quotas as _api_quotas  # noqa: F401 - registers /api/v1/.../quota
    from app.api import retention as _api_retention  # noqa: F401 - retention policies
    from app.api import routes as _api_routes  # noqa: F401 - registers the management routes
    from app.api import signing as _api_signing  # noqa: F401 - signing keys and policy
    from app.api import vulnerabilities as _api_vulnerabilities  # noqa: F401
    from app.api.framework import bp as api_bp
    from app.auth.credentials import init_audit
    from app.auth.routes import bp as auth_bp
    from app.cli import register as register_cli
    from app.oci.routes import bp as oci_bp
    from app.ops import probes
    from app.pypi.routes import bp as pypi_bp
    from app.web import unit_of_work_per_request

    app.register_blueprint(auth_bp)
    app.register_blueprint(api_bp)
    app.register_blueprint(oci_bp)
    app.register_blueprint(pypi_bp)
    from app.console import init_app as init_console

    init_console(app)
    init_audit(app)
    register_cli(app)
    _register_outage_handlers(app)
    _answer_unmatched(app)
    probes.init_app(app)
    gate.verify(app)
    unit_of_work_per_request(app)
    return app


def _identity_provider(settings: Settings):
    if settings.identity == "cognito":
        from app.identity.cognito import CognitoIdentity

        return CognitoIdentity(settings)
    if settings.identity != "local":
        raise ValueError(f"CARGOHOLD_IDENTITY={settings.identity!r}: use local or cognito")
    from app.identity.local import LocalIdentity

    return LocalIdentity()


def _register_outage_handlers(app: Flask) -> None:
    """A storage or database outage is a 503 the client may retry, never a bare 500: the
    detail is logged, and the blueprint's error mapper answers a core Unavailable error."""
    from sqlalchemy.exc import OperationalError

    from app.errors import CoreError, Unavailable
    from app.identity import IdentityUnavailable
    from app.storage import StorageUnavailable
    from app.web import distribution_error

    def unavailable(exc: Exception):
        from app.ops.probes import count_backend_error

        app.logger.warning("backend unavailable: %s", exc.__class__.__name__)
        count_backend_error(exc)
        db.session.rollback()
        err = Unavailable(
            "a storage or database backend is unavailable", headers={"Retry-After": "5"}
        )
        return app.handle_user_exception(err)

    app.register_error_handler(StorageUnavailable, unavailable)
    app.register_error_handler(OperationalError, unavailable)
    # Outside every blueprint, errors take the registry protocols' format.
    app.register_error_handler(CoreError, distribution_error)

    def body_stalled(_exc: TimeoutError):
        # The server's body timeout (app/http_worker.py): the client stopped sending. Whatever
        # arrived of an upload is kept, as when a client disconnects.
        app.logger.info("request body stalled; closing the connection")
        db.session.rollback()
        resp = jsonify({"errors": [{"code": "TIMEOUT", "message": "the request body stalled"}]})
        resp.status_code = 408
        resp.headers["Connection"] = "close"
        return resp

    app.register_error_handler(TimeoutError, body_stalled)
    app.register_error_handler(IdentityUnavailable, unavailable)


def _answer_unmatched(app: Flask) -> None:
    """A URL no route matches (404), or a method its route does not allow (405), is answered in
    the protocol its path belongs to: the PyPI way below a Python index, the management API's
    JSON elsewhere below /api/v1. Every other path keeps the console's handler of HTTP errors
    (its pages, or werkzeug's own answer on the other protocol paths)."""
    from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound

    from app.api.framework import unmatched as api_unmatched
    from app.console.errors import http_error
    from app.pypi.routes import unmatched as pypi_unmatched

    def unmatched(exc: HTTPException):
        path = request.path
        if PYPI_PATH.match(path):
            return pypi_unmatched(exc)
        if path == "/api/v1" or path.startswith("/api/v1/"):
            return api_unmatched(exc)
        return http_error(exc)

    app.register_error_handler(NotFound, unmatched)
    app.register_error_handler(MethodNotAllowed, unmatched)
