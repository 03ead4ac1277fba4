"""`flask bootstrap`, as `make run` uses it: first start generates the admin password once."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FLASK = str(Path(sys.executable).parent / "flask")


def bootstrap(data_dir: Path, **extra: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARGOHOLD_")}
    env.update(FLASK_APP="wsgi", CARGOHOLD_DATA_DIR=str(data_dir), **extra)
    out = subprocess.run(
        [FLASK, "bootstrap"], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    return out.stdout


def test_generated_password_is_printed_once_and_kept_private(tmp_path):
    first = bootstrap(tmp_path)
    password_file = tmp_path / "admin-password"
    password = password_file.read_text().strip()
    assert f"Generated password for admin: {password}" in first
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    second = bootstrap(tmp_path)
    assert "Generated password" not in second
    assert "Ready: organisation 'acme', registry acme/main" in second
    assert stat.S_IMODE((tmp_path / "token-key").stat().st_mode) == 0o600


def test_bootstrap_names_come_from_the_environment(tmp_path):
    out = bootstrap(
        tmp_path,
        CARGOHOLD_ADMIN_USER="root",
        CARGOHOLD_ADMIN_PASSWORD="a-long-password",
        CARGOHOLD_BOOTSTRAP_ORG="initech",
        CARGOHOLD_BOOTSTRAP_REGISTRY="builds",
    )
    assert "Generated password" not in out
    assert not (tmp_path / "admin-password").exists()
    assert "organisation 'initech', registry initech/builds, admin 'root'" in out
