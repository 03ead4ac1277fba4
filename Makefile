# The two commands that matter: `make run` and `make test`. Both install what they need.
VENV ?= .venv
PYTHON ?= python3

.PHONY: run test lint format tools services bench bench-backends install screenshots bench-console

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

services: install
	scripts/services.sh start

test: install tools services
	scripts/test.sh

lint: install
	$(VENV)/bin/ruff check app tests bench wsgi.py
	$(VENV)/bin/ruff format --check app tests bench wsgi.py

format: install
	$(VENV)/bin/ruff format app tests bench wsgi.py

# Cargohold side by side with Distribution, pypiserver and devpi; regenerates docs/benchmarks.md.
bench: install
	scripts/install-bench-tools.sh
	$(VENV)/bin/python bench/run.py $(BENCH_ARGS)

# Filesystem against PostgreSQL + S3 (SeaweedFS), redirects on and off; its own section of the doc.
bench-backends: install services
	scripts/install-bench-tools.sh
	$(VENV)/bin/python bench/backends.py $(BENCH_ARGS)

# The console's browser tests, then the screenshots docs/console.md shows, copied from their run.
CONSOLE_SHOTS = sign-in home organisation-admin registry-connect repository artifact \
	python-project account-new-token phone-artifact
screenshots: install tools
	rm -rf build/screenshots
	$(VENV)/bin/python -m pytest -q tests/console/test_browser.py
	mkdir -p docs/console
	for name in $(CONSOLE_SHOTS); do cp build/screenshots/$$name.png docs/console/; done

# Server time of the console's largest pages: 1,000 tags, 1,000 repositories (docs/benchmarks.md).
bench-console: install
	$(VENV)/bin/python bench/console.py $(BENCH_ARGS)
