# The two commands a new user types (see README.md): `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
PIP := $(BIN)/pip install --quiet --disable-pip-version-check

.PHONY: run test lint format test-tools

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed-run: requirements.txt | $(BIN)/python
	$(PIP) -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(PIP) -r requirements-dev.txt
	touch $@

## run: install, migrate, and serve on http://$(HOST):$(PORT) (SQLite, in-process queue)
run: $(VENV)/.installed-run
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(BIN)/python manage.py first_admin
	@echo "Serving the dashboard on http://$(HOST):$(PORT)/dashboard/ (admin: http://$(HOST):$(PORT)/admin/). Ctrl-C stops."
	$(BIN)/gunicorn mrdj.wsgi --bind $(HOST):$(PORT) --workers 1 --threads 8 --access-logfile -

## test: the whole test suite (set DATABASE_URL for PostgreSQL, as CI does)
test: $(VENV)/.installed-dev test-tools
	$(BIN)/pytest $(ARGS)

# Debian packages the tests use: Chromium for the dashboard's browser tests, promtool
# (package prometheus) to check GET /metrics. Installed here when missing and this runs
# as root; elsewhere those tests say what to install and are skipped.
test-tools:
	@if [ "$$(id -u)" = 0 ]; then \
		export DEBIAN_FRONTEND=noninteractive; \
		install() { apt-get install -y -q "$$@" >/dev/null || \
			(apt-get update -q >/dev/null && apt-get install -y -q "$$@" >/dev/null); }; \
		test -x /usr/bin/chromium || { echo "Installing Chromium for the browser tests"; install chromium; }; \
		command -v promtool >/dev/null || \
			{ echo "Installing promtool for the /metrics test"; install --no-install-recommends prometheus; }; \
	fi

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.installed-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .
