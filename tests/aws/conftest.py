"""moto as a server for the whole session: Cognito user pools and SQS queues on loopback."""

from __future__ import annotations

import os
from dataclasses import replace

import pytest
from flask_migrate import upgrade

from app import create_app
from app.config import Settings
from app.models import db
from tests.support.moto import CREDENTIALS, REGION, Moto, create_pool, create_queues, start_moto
from tests.support.services import Backend


@pytest.fixture(scope="session")
def moto(tmp_path_factory) -> Moto:
    server = start_moto(tmp_path_factory.mktemp("moto"))
    saved = {k: os.environ.get(k) for k in CREDENTIALS}
    # In-process boto3 clients (the Lambda handler, the worker, the identity provider) find
    # these as they would find a role's credentials.
    os.environ.update(CREDENTIALS)
    yield server
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    server.stop()


@pytest.fixture
def pool(moto):
    return create_pool(moto)


@pytest.fixture
def queues(moto):
    return create_queues(moto)


@pytest.fixture
def make_app(tmp_path, pool):
    """An app using the pool, on a fresh database of the test backend, migrated to head, its
    app context pushed for the test."""
    backend = Backend()
    contexts = []

    def make(**overrides):
        env = backend.env()
        settings = Settings(
            data_dir=tmp_path,
            database_url=env.get("CARGOHOLD_DATABASE_URL", ""),
            identity="cognito",
            cognito_user_pool_id=pool.pool_id,
            cognito_client_id=pool.client_id,
            cognito_client_secret=pool.client_secret,
            cognito_region=REGION,
            cognito_endpoint=pool.moto.url,
            cognito_admin_group=pool.admin_group,
        )
        flask_app = create_app(replace(settings, **overrides))
        ctx = flask_app.app_context()
        ctx.push()
        contexts.append(ctx)
        upgrade()
        return flask_app

    yield make
    for ctx in reversed(contexts):
        db.session.remove()
        ctx.pop()
    backend.cleanup()


@pytest.fixture
def app(make_app):
    return make_app()
