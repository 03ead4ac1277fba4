#!/usr/bin/env bash
# The whole suite: lint, unit and API tests, real clients, the OCI conformance suite, on both
# backends. Arguments, when given, go to one pytest run instead (e.g. scripts/test.sh -k tags).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
export PATH="${CARGOHOLD_TOOLS:-$HOME/.cache/cargohold/tools}/bin:$PATH"
mkdir -p build
# PostgreSQL and S3 for the production-backend tests (scripts/services.sh start writes it).
if [ -f build/services/env ]; then
  set -a
  . build/services/env
  set +a
fi
"$VENV/bin/ruff" check app tests bench wsgi.py gunicorn.conf.py
"$VENV/bin/ruff" format --check app tests bench wsgi.py gunicorn.conf.py
if [ $# -gt 0 ]; then
  exec "$VENV/bin/pytest" -ra "$@"
fi
# Everything on the embedded default (SQLite + filesystem), the backend tests included...
"$VENV/bin/pytest" -ra --junitxml=build/pytest-junit.xml
# ...then the protocol suites again on PostgreSQL + S3 (SeaweedFS).
CARGOHOLD_TEST_BACKEND=postgres "$VENV/bin/pytest" -ra --junitxml=build/pytest-junit-postgres.xml \
  tests/test_oci_api.py tests/test_tenancy.py tests/test_authorization_table.py \
  tests/clients tests/pypi tests/test_conformance.py
