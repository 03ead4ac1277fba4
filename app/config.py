"""Settings, from CARGOHOLD_* environment variables so scripts and containers can drive them."""

from __future__ import annotations

import contextlib
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path


def _env(name: str, default: str) -> str:
    return os.environ.get(f"CARGOHOLD_{name}", default)


def _flag(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


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
    # Failed logins allowed per account and per client address within the window (seconds).
    login_max_failures: int = 10
    login_max_failures_per_address: int = 50
    login_window: int = 900
    # S3 storage (CARGOHOLD_STORAGE=s3). Credentials come from the standard AWS chain.
    s3_bucket: str = ""
    s3_endpoint: str = ""
    s3_region: str = ""
    s3_prefix: str = ""
    # Blob GETs answer 307 to a presigned URL, so bytes flow from the store, not through us.
    s3_redirect: bool = True
    s3_presign_ttl: int = 300
    # Console sessions end after this many seconds without a request.
    console_idle_timeout: int = 3600
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_env(cls) -> Settings:
        data_dir = Path(_env("DATA_DIR", "./data")).resolve()
        return cls(
            host=_env("HOST", "127.0.0.1"),
            port=int(_env("PORT", "5000")),
            data_dir=data_dir,
            database_url=_env("DATABASE_URL", ""),
            storage=_env("STORAGE", "filesystem"),
            admin_user=_env("ADMIN_USER", "admin"),
            admin_password=_env("ADMIN_PASSWORD", ""),
            bootstrap_org=_env("BOOTSTRAP_ORG", "acme"),
            bootstrap_registry=_env("BOOTSTRAP_REGISTRY", "main"),
            token_key=_env("TOKEN_KEY", ""),
            token_ttl=int(_env("TOKEN_TTL", "300")),
            service=_env("SERVICE", "cargohold"),
            public_url=_env("PUBLIC_URL", "").rstrip("/"),
            s3_bucket=_env("S3_BUCKET", ""),
            s3_endpoint=_env("S3_ENDPOINT", ""),
            s3_region=_env("S3_REGION", ""),
            s3_prefix=_env("S3_PREFIX", ""),
            s3_redirect=_flag(_env("S3_REDIRECT", "true")),
            s3_presign_ttl=int(_env("S3_PRESIGN_TTL", "300")),
            login_max_failures=int(_env("LOGIN_MAX_FAILURES", "10")),
            login_max_failures_per_address=int(_env("LOGIN_MAX_FAILURES_PER_ADDRESS", "50")),
            login_window=int(_env("LOGIN_WINDOW", "900")),
            console_idle_timeout=int(_env("CONSOLE_IDLE_TIMEOUT", "3600")),
        )

    def resolved_database_url(self) -> str:
        url = self.database_url or f"sqlite:///{self.data_dir / 'cargohold.db'}"
        # The usual spelling means psycopg2 to SQLAlchemy; psycopg 3 is what is installed.
        for plain in ("postgresql://", "postgres://"):
            if url.startswith(plain):
                return "postgresql+psycopg://" + url[len(plain) :]
        return url

    def resolved_token_key(self) -> str:
        """The JWT signing key: configured, or generated once and kept beside the data."""
        if self.token_key:
            return self.token_key
        path = self.data_dir / "token-key"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(secrets.token_urlsafe(48))
            tmp.chmod(0o600)
            # Two workers starting at once must agree on one key: the first link wins.
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
            tmp.unlink(missing_ok=True)
        return path.read_text().strip()
