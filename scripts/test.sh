#!/usr/bin/env bash
# The whole suite: lint, unit and API tests, real clients, the OCI conformance suite, on both
# backends. Arguments, when given, go to one pytest run instead (e.g. scripts/test.sh -k tags).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
export PATH="${CARGOHOLD_TOOLS:-$HOME/.cache/cargohold/tools}/bin:$PATH"
mkdir -p build
# `make test` (CARGOHOLD_START_SERVICES=1) starts PostgreSQL and SeaweedFS and stops, when it ends,
# those that were not running before; services started with `make services` keep running.
if [ "${CARGOHOLD_START_SERVICES:-}" = 1 ]; then
  was_running="$(scripts/services.sh running)"
  stop_started() {
    case "$was_running" in *postgres*) ;; *) scripts/services.sh stop-postgres ;; esac
    case "$was_running" in *seaweedfs*) ;; *) scripts/services.sh stop-s3 ;; esac
    if [ -z "$was_running" ]; then rm -f build/services/env; fi
  }
  trap stop_started EXIT
  scripts/services.sh start
fi
# PostgreSQL and S3 for the production-backend tests (scripts/services.sh start writes it).
if [ -f build/services/env ]; then
  set -a
  . build/services/env
  set +a
fi
# The Python package tests fetch their pinned wheels (tests/pypi/testdata.lock) into
# ~/.cache/cargohold/testdata; a copy already fetched beside the checkout saves the download.
if [ -z "${CARGOHOLD_PYTHON_TESTDATA:-}" ] && [ -d ../shared/testdata/python ]; then
  export CARGOHOLD_PYTHON_TESTDATA="$PWD/../shared/testdata/python"
fi
"$VENV/bin/ruff" check app worker lambda_signup scripts tests bench migrations wsgi.py gunicorn.conf.py
"$VENV/bin/ruff" format --check app worker lambda_signup scripts tests bench migrations wsgi.py gunicorn.conf.py
if [ $# -gt 0 ]; then
  "$VENV/bin/pytest" -ra "$@"
  exit
fi
# Everything on the embedded default (SQLite + filesystem), the backend tests included...
"$VENV/bin/pytest" -ra --junitxml=build/pytest-junit.xml
# ...then the protocol suites again on PostgreSQL + S3 (SeaweedFS).
CARGOHOLD_TEST_BACKEND=postgres "$VENV/bin/pytest" -ra --junitxml=build/pytest-junit-postgres.xml \
  tests/test_oci_api.py tests/test_tenancy.py tests/test_authorization_table.py \
  tests/clients tests/pypi tests/test_conformance.py tests/test_gc.py tests/test_immutability.py \
  tests/test_vulnerabilities.py tests/test_retention.py tests/test_quotas.py tests/test_audit.py \
  tests/test_decision_cache.py tests/test_policy_stamp.py \
  tests/aws/test_worker.py tests/aws/test_signup_flow.py \
  tests/console/test_pages.py tests/console/test_actions.py
