"""PostgreSQL and S3 (SeaweedFS) as `scripts/services.sh start` left them, for backend tests.

The script writes `build/services/env`; `scripts/test.sh` also exports it, and variables already
in the environment win, so the tests can point at other servers.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.server import ROOT

ENV_FILE = ROOT / "build" / "services" / "env"
KEYS = (
    "CARGOHOLD_TEST_DATABASE_URL",
    "CARGOHOLD_TEST_S3_ENDPOINT",
    "CARGOHOLD_TEST_S3_BUCKET",
    "CARGOHOLD_TEST_S3_REGION",
    "CARGOHOLD_TEST_S3_ACCESS_KEY",
    "CARGOHOLD_TEST_S3_SECRET_KEY",
)


def _read_env(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            name, sep, value = line.partition("=")
            if sep and not line.lstrip().startswith("#"):
                values[name.strip()] = value.strip()
    return values


@dataclass(frozen=True)
class Services:
    database_url: str  # a superuser's URL, for creating and dropping test databases
    s3_endpoint: str
    s3_bucket: str
    s3_region: str
    s3_access_key: str
    s3_secret_key: str

    # ---- PostgreSQL ---------------------------------------------------------------------------

    def _admin(self):
        import psycopg

        return psycopg.connect(self.database_url.replace("+psycopg", ""), autocommit=True)

    def create_database(self) -> str:
        """A new, empty database with a random name; its SQLAlchemy URL."""
        name = f"cargohold_test_{uuid.uuid4().hex[:12]}"
        with self._admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.database_url.rsplit("/", 1)[0] + f"/{name}"

    def drop_database(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        with self._admin() as conn:
            # FORCE: servers under test, and the test process itself, may still hold sessions.
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    # ---- S3 ----------------------------------------------------------------------------------

    def s3_client(self) -> Any:
        from app.storage.s3 import make_client

        return make_client(self.s3_endpoint, self.s3_region, self.s3_access_key, self.s3_secret_key)

    def keys(self, prefix: str) -> list[str]:
        s3 = self.s3_client()
        return [
            obj["Key"]
            for page in s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.s3_bucket, Prefix=prefix
            )
            for obj in page.get("Contents", [])
        ]

    def multipart_uploads(self, prefix: str) -> list[dict]:
        s3 = self.s3_client()
        return [
            mpu
            for page in s3.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.s3_bucket, Prefix=prefix
            )
            for mpu in page.get("Uploads", [])
        ]

    def purge(self, prefix: str) -> None:
        """Remove everything a test left under its prefix, in-flight uploads included."""
        s3 = self.s3_client()
        for mpu in self.multipart_uploads(prefix):
            s3.abort_multipart_upload(
                Bucket=self.s3_bucket, Key=mpu["Key"], UploadId=mpu["UploadId"]
            )
        keys = self.keys(prefix)
        for i in range(0, len(keys), 1000):
            batch = [{"Key": k} for k in keys[i : i + 1000]]
            s3.delete_objects(Bucket=self.s3_bucket, Delete={"Objects": batch, "Quiet": True})

    # ---- a Cargohold on both -----------------------------------------------------------------

    def server_env(self, database_url: str, prefix: str, **extra: str) -> dict[str, str]:
        """Environment for `make_server(extra_env=...)`: PostgreSQL and S3, AWS-chain keys."""
        return {
            "CARGOHOLD_DATABASE_URL": database_url,
            "CARGOHOLD_STORAGE": "s3",
            "CARGOHOLD_S3_BUCKET": self.s3_bucket,
            "CARGOHOLD_S3_ENDPOINT": self.s3_endpoint,
            "CARGOHOLD_S3_REGION": self.s3_region,
            "CARGOHOLD_S3_PREFIX": prefix,
            "AWS_ACCESS_KEY_ID": self.s3_access_key,
            "AWS_SECRET_ACCESS_KEY": self.s3_secret_key,
            # Replicas must accept each other's tokens.
            "CARGOHOLD_TOKEN_KEY": uuid.uuid4().hex * 2,
            **extra,
        }


def load() -> Services | None:
    values = {**_read_env(ENV_FILE), **{k: os.environ[k] for k in KEYS if os.environ.get(k)}}
    if not all(values.get(k) for k in KEYS):
        return None
    return Services(*(values[k] for k in KEYS))


def require_services() -> Services:
    """Missing services fail in CI (`make test` starts them) and skip elsewhere."""
    services = load()
    if services is not None:
        return services
    if os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL and S3 are not running: {ENV_FILE} is missing")
    pytest.skip("PostgreSQL and S3 are not running (scripts/services.sh start)")


def unique_prefix() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


class Backend:
    """The backend the shared `server` fixture runs on: CARGOHOLD_TEST_BACKEND=sqlite (default)
    or postgres (PostgreSQL + S3), so any suite can be run against either."""

    def __init__(self) -> None:
        self.name = os.environ.get("CARGOHOLD_TEST_BACKEND", "sqlite")
        self._made: list[tuple[Services, str, str]] = []

    def env(self) -> dict[str, str]:
        if self.name == "sqlite":
            return {}
        if self.name != "postgres":
            raise ValueError(f"CARGOHOLD_TEST_BACKEND={self.name!r}: use sqlite or postgres")
        services = require_services()
        url, prefix = services.create_database(), unique_prefix()
        self._made.append((services, url, prefix))
        return services.server_env(url, prefix)

    def cleanup(self) -> None:
        for services, url, prefix in self._made:
            services.drop_database(url)
            services.purge(prefix)
        self._made.clear()
