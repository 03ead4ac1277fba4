"""Cargohold: a multi-tenant, OCI-native artifact registry."""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from flask_migrate import Migrate
from sqlalchemy import event
from sqlalchemy.engine import Engine

from app.config import Settings
from app.models import db

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # WAL lets readers and the writer of several gunicorn workers proceed together;
    # busy_timeout turns lock contention into a short wait instead of an error.
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cur = dbapi_connection.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env()
    app = Flask(__name__)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app.config["SQLALCHEMY_DATABASE_URI"] = settings.resolved_database_url()
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {"pool_pre_ping": True}
    app.config["SECRET_KEY"] = settings.resolved_token_key()
    # Blob bodies stream through request.stream; nothing may read them into form data.
    app.config["MAX_FORM_MEMORY_SIZE"] = 1024 * 1024

    db.init_app(app)
    Migrate(app, db, directory=str(MIGRATIONS))

    from app.auth.tokens import TokenIssuer
    from app.identity.local import LocalIdentity
    from app.storage import create_store

    app.extensions["cargohold.settings"] = settings
    app.extensions["cargohold.store"] = create_store(settings)
    app.extensions["cargohold.identity"] = LocalIdentity()
    app.extensions["cargohold.tokens"] = TokenIssuer(
        key=settings.resolved_token_key(),
        service=settings.service,
        ttl=settings.token_ttl,
        refresh_ttl=settings.refresh_ttl,
    )

    from app.api import openapi as _openapi  # noqa: F401 - registers /api/v1/openapi.json
    from app.api import routes as _api_routes  # noqa: F401 - registers the management routes
    from app.api.framework import bp as api_bp
    from app.auth.routes import bp as auth_bp
    from app.cli import register as register_cli
    from app.oci.routes import bp as oci_bp
    from app.pypi.routes import bp as pypi_bp

    app.register_blueprint(auth_bp)
    app.register_blueprint(api_bp)
    app.register_blueprint(oci_bp)
    app.register_blueprint(pypi_bp)
    from app.console import init_app as init_console

    init_console(app)
    register_cli(app)
    _register_outage_handlers(app)
    return app


def _register_outage_handlers(app: Flask) -> None:
    """A storage or database outage is a 503 the client may retry, never a bare 500."""
    from flask import jsonify
    from sqlalchemy.exc import OperationalError

    from app.registry.errors import RegistryError
    from app.storage import StorageUnavailable
    from app.web import drain_request_body

    def unavailable(exc: Exception):
        app.logger.warning("backend unavailable: %s", exc.__class__.__name__)
        db.session.rollback()
        drain_request_body()
        err = RegistryError("UNAVAILABLE", "a storage or database backend is unavailable")
        resp = jsonify(err.body())
        resp.status_code = 503
        resp.headers["Retry-After"] = "5"
        return resp

    app.register_error_handler(StorageUnavailable, unavailable)
    app.register_error_handler(OperationalError, unavailable)
