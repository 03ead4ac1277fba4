"""Password hashes: argon2id at OWASP's recommended parameters, and hashes made with others
(argon2-cffi's defaults, used before) rewritten at the next successful login."""

from __future__ import annotations

from argon2 import PasswordHasher, extract_parameters

from app.access import tenancy
from app.identity.local import LocalIdentity
from app.models import db


def test_new_hashes_use_the_owasp_parameters(inprocess_app):
    with inprocess_app.app_context():
        user = tenancy.create_user("hash-new", "correct horse battery")
        params = extract_parameters(user.password_hash)
        assert (params.memory_cost, params.time_cost, params.parallelism) == (19 * 1024, 2, 1)
        db.session.rollback()


def test_old_parameters_are_rehashed_at_login(inprocess_app):
    with inprocess_app.app_context():
        user = tenancy.create_user("hash-old", "correct horse battery")
        user.password_hash = PasswordHasher(time_cost=3, memory_cost=65536, parallelism=4).hash(
            "correct horse battery"
        )
        db.session.flush()
        assert LocalIdentity().authenticate("hash-old", "wrong horse battery") is None
        assert extract_parameters(user.password_hash).memory_cost == 65536
        assert LocalIdentity().authenticate("hash-old", "correct horse battery") == user
        assert extract_parameters(user.password_hash).memory_cost == 19 * 1024
        assert LocalIdentity().authenticate("hash-old", "correct horse battery") == user
        db.session.rollback()
