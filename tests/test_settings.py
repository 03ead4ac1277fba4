"""Settings: every field comes from `CARGOHOLD_<FIELD>` and is documented."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pytest

from app.config import Settings, env_name

DOCS = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"

# The names deployments already use; each must keep working.
KNOWN = {
    "CARGOHOLD_HOST": ("host", "0.0.0.0", "0.0.0.0"),
    "CARGOHOLD_PORT": ("port", "8080", 8080),
    "CARGOHOLD_DATABASE_URL": ("database_url", "postgresql://u@h/db", "postgresql://u@h/db"),
    "CARGOHOLD_STORAGE": ("storage", "s3", "s3"),
    "CARGOHOLD_ADMIN_USER": ("admin_user", "root", "root"),
    "CARGOHOLD_ADMIN_PASSWORD": ("admin_password", "-secret", "-secret"),
    "CARGOHOLD_BOOTSTRAP_ORG": ("bootstrap_org", "initech", "initech"),
    "CARGOHOLD_BOOTSTRAP_REGISTRY": ("bootstrap_registry", "prod", "prod"),
    "CARGOHOLD_TOKEN_KEY": ("token_key", "k" * 64, "k" * 64),
    "CARGOHOLD_TOKEN_TTL": ("token_ttl", "60", 60),
    "CARGOHOLD_SERVICE": ("service", "registry.example", "registry.example"),
    "CARGOHOLD_PUBLIC_URL": ("public_url", "https://r.example/", "https://r.example"),
    "CARGOHOLD_S3_BUCKET": ("s3_bucket", "blobs", "blobs"),
    "CARGOHOLD_S3_ENDPOINT": ("s3_endpoint", "http://127.0.0.1:8333", "http://127.0.0.1:8333"),
    "CARGOHOLD_S3_REGION": ("s3_region", "eu-west-1", "eu-west-1"),
    "CARGOHOLD_S3_PREFIX": ("s3_prefix", "cargo/", "cargo/"),
    "CARGOHOLD_S3_REDIRECT": ("s3_redirect", "false", False),
    "CARGOHOLD_S3_PRESIGN_TTL": ("s3_presign_ttl", "30", 30),
    "CARGOHOLD_LOGIN_MAX_FAILURES": ("login_max_failures", "3", 3),
    "CARGOHOLD_LOGIN_MAX_FAILURES_PER_ADDRESS": ("login_max_failures_per_address", "7", 7),
    "CARGOHOLD_LOGIN_WINDOW": ("login_window", "120", 120),
    "CARGOHOLD_REFRESH_TTL": ("refresh_ttl", "3600", 3600),
    "CARGOHOLD_MAX_MANIFEST_BYTES": ("max_manifest_bytes", "1024", 1024),
}


def test_every_setting_is_documented():
    documented = set(re.findall(r"`(CARGOHOLD_[A-Z0-9_]+)`", DOCS.read_text()))
    missing = [env_name(f.name) for f in fields(Settings) if env_name(f.name) not in documented]
    assert missing == [], f"add these to docs/configuration.md: {missing}"


def test_every_field_is_read_from_its_variable():
    names = {env_name(f.name) for f in fields(Settings)}
    assert set(KNOWN) | {"CARGOHOLD_DATA_DIR", "CARGOHOLD_EXTRA"} <= names


@pytest.mark.parametrize("variable", sorted(KNOWN))
def test_existing_variables_keep_working(variable):
    field, raw, expected = KNOWN[variable]
    assert getattr(Settings.from_env({variable: raw}), field) == expected


def test_defaults_when_unset(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = Settings.from_env({})
    assert settings.data_dir == tmp_path / "data"
    assert (settings.port, settings.s3_redirect, settings.extra) == (5000, True, {})


def test_paths_lists_and_objects(tmp_path):
    settings = Settings.from_env(
        {"CARGOHOLD_DATA_DIR": str(tmp_path / "d"), "CARGOHOLD_EXTRA": '{"a": 1}'}
    )
    assert settings.data_dir == tmp_path / "d" and settings.extra == {"a": 1}


@pytest.mark.parametrize("raw", ["yes", "1", "on", "TRUE"])
def test_true_spellings(raw):
    assert Settings.from_env({"CARGOHOLD_S3_REDIRECT": raw}).s3_redirect is True


@pytest.mark.parametrize(
    ("variable", "raw"),
    [("CARGOHOLD_PORT", "eighty"), ("CARGOHOLD_S3_REDIRECT", "maybe"), ("CARGOHOLD_EXTRA", "[]")],
)
def test_bad_values_are_refused_by_name(variable, raw):
    with pytest.raises(ValueError, match=variable):
        Settings.from_env({variable: raw})


def test_lists_and_optional_values():
    from app.config import _parse

    assert _parse(list[str], " a, b ,,c ", "X") == ["a", "b", "c"]
    assert _parse(list[int], "1,2", "X") == [1, 2]
    assert _parse(tuple[str, ...], "", "X") == ()
    assert _parse(int | None, "", "X") is None
    assert _parse(int | None, "5", "X") == 5
