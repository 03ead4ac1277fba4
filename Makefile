# The two commands that matter: `make run` and `make test`. Both install what they need.
VENV ?= .venv
PYTHON ?= python3

.PHONY: run test lint format tools services bench bench-backends install lambda image screenshots bench-console bench-scale

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed

run: install
	scripts/run.sh

tools:
	scripts/install-tools.sh

# The Cognito sign-up trigger, as the zip terraform/lambda.tf deploys (deterministic).
lambda: install
	$(VENV)/bin/python scripts/build_lambda.py build/lambda_signup.zip

services: install
	scripts/services.sh start

# Starts PostgreSQL and SeaweedFS, and stops them at the end unless they were already running.
test: install tools
	CARGOHOLD_START_SERVICES=1 scripts/test.sh

# The container image (podman), on a base made from Debian packages where no registry is reachable.
image: tools
	scripts/image.sh

lint: install
	$(VENV)/bin/ruff check app worker lambda_signup scripts tests bench migrations wsgi.py gunicorn.conf.py
	$(VENV)/bin/ruff format --check app worker lambda_signup scripts tests bench migrations wsgi.py gunicorn.conf.py

format: install
	$(VENV)/bin/ruff format app worker lambda_signup scripts tests bench migrations wsgi.py gunicorn.conf.py

# Cargohold side by side with Distribution, pypiserver and devpi; regenerates docs/benchmarks.md.
bench: install
	scripts/install-bench-tools.sh
	$(VENV)/bin/python bench/run.py $(BENCH_ARGS)

# Filesystem against PostgreSQL + S3 (SeaweedFS), redirects on and off; its own section of the doc.
bench-backends: install services
	scripts/install-bench-tools.sh
	$(VENV)/bin/python bench/backends.py $(BENCH_ARGS)

# The console's browser tests, then the screenshots docs/console.md shows, copied from their run.
CONSOLE_SHOTS = sign-in sign-in-cognito home organisation-admin registry-connect repository \
	artifact python-project account-new-token phone-artifact
screenshots: install tools
	rm -rf build/screenshots
	$(VENV)/bin/python -m pytest -q tests/console/test_browser.py \
		tests/aws/test_cognito_sign_in.py::test_sign_in_with_cognito_in_chromium
	mkdir -p docs/console
	for name in $(CONSOLE_SHOTS); do cp build/screenshots/$$name.png docs/console/; done

# 100,000 tags, repositories and Python projects: page, catalog, root index and push latency.
bench-scale: install
	$(VENV)/bin/python bench/scale.py $(BENCH_ARGS)

# Server time of the console's largest pages: 1,000 tags, 1,000 repositories (docs/benchmarks.md).
bench-console: install
	$(VENV)/bin/python bench/console.py $(BENCH_ARGS)
