"""Settings, from CARGOHOLD_* environment variables so scripts and containers can drive them.

Each field of `Settings` is read from `CARGOHOLD_<FIELD>`; docs/configuration.md lists them all.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import UnionType
from typing import Any, Union, get_args, get_origin, get_type_hints

from app.filemodes import private_dir, private_once

PREFIX = "CARGOHOLD_"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_name(field_name: str) -> str:
    return PREFIX + field_name.upper()


def _parse(kind: Any, raw: str, name: str) -> Any:
    """One environment value as the annotated type: str, int, float, bool, Path, a list or
    tuple of those (comma-separated), a JSON object for dicts, `X | None` (empty is None)."""
    origin, args = get_origin(kind), get_args(kind)
    if origin in (UnionType, Union) and type(None) in args:
        inner = [a for a in args if a is not type(None)]
        return None if raw.strip() == "" else _parse(inner[0], raw, name)
    if origin in (list, tuple):
        words = [w.strip() for w in raw.split(",") if w.strip()]
        items = [_parse(args[0] if args else str, w, name) for w in words]
        return items if origin is list else tuple(items)
    if kind is bool or origin is bool:
        value = raw.strip().lower()
        if value not in _TRUE | _FALSE:
            raise ValueError(f"{name}={raw!r}: use true or false")
        return value in _TRUE
    if kind in (dict, Mapping) or origin in (dict, Mapping):
        try:
            value = json.loads(raw) if raw.strip() else {}
        except ValueError:
            value = None
        if not isinstance(value, dict):
            raise ValueError(f"{name} must be a JSON object")
        return value
    if kind in (int, float):
        try:
            return kind(raw.strip())
        except ValueError:
            raise ValueError(f"{name}={raw!r} is not a number") from None
    if kind is Path:
        return Path(raw)
    return raw


@dataclass
class Settings:
    host: str = "127.0.0.1"
    port: int = 5000
    data_dir: Path = Path("./data")
    database_url: str = ""
    storage: str = "filesystem"
    admin_user: str = "admin"
    admin_password: str = ""
    bootstrap_org: str = "acme"
    bootstrap_registry: str = "main"
    # Shared between replicas; the embedded default keeps a generated one in the data folder.
    token_key: str = ""
    token_ttl: int = 300
    refresh_ttl: int = 30 * 24 * 3600
    service: str = "cargohold"
    public_url: str = ""
    max_manifest_bytes: int = 4 * 1024 * 1024
    # The largest JSON (or form) body the management API and PyPI's JSON endpoints read.
    max_json_bytes: int = 1024 * 1024
    # Seconds a client has to send a request's headers (whole), and to make progress while
    # sending a body or reading a response (each read or write), before the connection is
    # closed: slow clients cannot hold the request threads (app/http_worker.py).
    header_timeout: float = 20.0
    body_timeout: float = 60.0
    # Failed logins allowed per account and per client address within the window (seconds).
    login_max_failures: int = 10
    login_max_failures_per_address: int = 50
    login_window: int = 900
    # Issuers trust policies may name: issuer URLs or https host patterns, comma-separated.
    # Empty: any https issuer on a public address. Private addresses only when listed.
    oidc_issuers: str = ""
    # Deadline for reading one of an issuer's documents (discovery, JWKS), seconds.
    oidc_fetch_timeout: float = 5.0
    # Blobs on the filesystem go out through sendfile(2) instead of being copied through the
    # process: less CPU per byte, but a receiver on the same host (a reverse proxy, a container
    # bridge, loopback) was measured taking them more slowly (docs/benchmarks.md).
    sendfile: bool = False
    # S3 storage (CARGOHOLD_STORAGE=s3). Credentials come from the standard AWS chain.
    s3_bucket: str = ""
    s3_endpoint: str = ""
    s3_region: str = ""
    s3_prefix: str = ""
    # Blob GETs answer 307 to a presigned URL, so bytes flow from the store, not through us.
    s3_redirect: bool = True
    s3_presign_ttl: int = 300
    # Password for CARGOHOLD_DATABASE_URL, kept apart so a secret store can inject it alone.
    database_password: str = ""
    # Operations: log format (text or json), proxy hops to trust, /metrics bearer token.
    log_format: str = "text"
    trusted_proxies: int = 0
    metrics_token: str = ""
    # Who vouches for passwords: "local" (argon2 hashes here) or "cognito" (an AWS user pool).
    identity: str = "local"
    cognito_user_pool_id: str = ""
    cognito_client_id: str = ""
    cognito_client_secret: str = ""
    cognito_region: str = ""
    cognito_endpoint: str = ""
    cognito_admin_group: str = ""
    # The pool's hosted UI (https://<prefix>.auth.<region>.amazoncognito.com or a custom
    # domain): set, the console offers "Sign in with Cognito".
    cognito_domain: str = ""
    # The sign-up worker (python -m worker): the queue the Cognito trigger publishes to.
    signup_queue_url: str = ""
    sqs_endpoint: str = ""
    # Personal organisation for new users: "always", "uninvited" (only when no invitation was
    # accepted) or "never"; and the registry made in it ("" for none).
    signup_personal_org: str = "uninvited"
    signup_registry: str = "main"
    worker_batch: int = 10
    worker_wait: int = 20
    worker_visibility: int = 60
    worker_retry_delay: int = 30
    # The worker's Prometheus metrics over HTTP (0: not served); loopback unless opened up.
    worker_metrics_port: int = 0
    worker_metrics_host: str = "127.0.0.1"
    # Console sessions end after this many seconds without a request.
    console_idle_timeout: int = 3600
    # Garbage collection: how long content nothing references stays before it may go (also
    # how long a pushed layer waits for its manifest), and how many candidates one batch takes.
    gc_grace_seconds: int = 24 * 3600
    gc_batch_size: int = 500
    # `flask gc worker`: seconds between passes; upload sessions idle for longer than this (10
    # minutes at least) are aborted.
    gc_interval_seconds: int = 60
    upload_max_age_seconds: int = 24 * 3600
    # Audit events older than this many days are purged by `flask gc worker` and `flask audit
    # purge`; 0 keeps them for ever.
    audit_retention_days: int = 0
    # Storage limits (bytes) given to organisations and registries when they are created;
    # None: unlimited. Site admins change each one through /api/v1/.../quota.
    default_org_quota_bytes: int | None = None
    default_registry_quota_bytes: int | None = None
    # `flask gc worker`: each retention policy is applied at most once per this many seconds.
    retention_interval_seconds: int = 3600
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Every field from `CARGOHOLD_<FIELD>`, parsed by its annotated type; unset means the
        field's default."""
        environ = os.environ if environ is None else environ
        hints = get_type_hints(cls)
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = environ.get(env_name(f.name))
            if raw is not None:
                values[f.name] = _parse(hints[f.name], raw, env_name(f.name))
        settings = cls(**values)
        settings.data_dir = settings.data_dir.resolve()
        settings.public_url = settings.public_url.rstrip("/")
        settings.cognito_endpoint = settings.cognito_endpoint.rstrip("/")
        settings.cognito_domain = settings.cognito_domain.strip().rstrip("/")
        if settings.cognito_domain and "://" not in settings.cognito_domain:
            settings.cognito_domain = "https://" + settings.cognito_domain
        settings.sqs_endpoint = settings.sqs_endpoint.rstrip("/")
        for name in ("log_format", "identity", "signup_personal_org"):
            setattr(settings, name, getattr(settings, name).strip().lower())
        for name in ("default_org_quota_bytes", "default_registry_quota_bytes"):
            if (getattr(settings, name) or 0) < 0:
                raise ValueError(f"{env_name(name)} must be a number of bytes, 0 or more")
        return settings

    def resolved_database_url(self) -> str:
        url = self.database_url or f"sqlite:///{self.data_dir / 'cargohold.db'}"
        # The usual spelling means psycopg2 to SQLAlchemy; psycopg 3 is what is installed.
        for plain in ("postgresql://", "postgres://"):
            if url.startswith(plain):
                url = "postgresql+psycopg://" + url[len(plain) :]
        if self.database_password:
            from sqlalchemy.engine import make_url

            # make_url quotes whatever characters a generated password holds.
            url = make_url(url).set(password=self.database_password).render_as_string(False)
        return url

    def resolved_token_key(self) -> str:
        """The JWT signing key: configured, or generated once and kept beside the data."""
        if self.token_key:
            return self.token_key
        private_dir(self.data_dir)
        return private_once(self.data_dir / "token-key", lambda: secrets.token_urlsafe(48)).strip()
