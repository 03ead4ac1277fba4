#!/usr/bin/env bash
# The whole suite: lint, unit and API tests, real clients, the OCI conformance suite.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
export PATH="${CARGOHOLD_TOOLS:-$HOME/.cache/cargohold/tools}/bin:$PATH"
mkdir -p build
"$VENV/bin/ruff" check app tests bench wsgi.py
"$VENV/bin/ruff" format --check app tests bench wsgi.py
"$VENV/bin/pytest" -ra --junitxml=build/pytest-junit.xml "$@"
