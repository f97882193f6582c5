# The two commands a new user types (see README.md): `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
PIP := $(BIN)/pip install --quiet --disable-pip-version-check

.PHONY: run test lint format chromium

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
	@echo "Serving on http://$(HOST):$(PORT)/ (admin: http://$(HOST):$(PORT)/admin/). Ctrl-C stops."
	$(BIN)/gunicorn mrdj.wsgi --bind $(HOST):$(PORT) --workers 1 --threads 8 --access-logfile -

## test: the whole test suite (set DATABASE_URL for PostgreSQL, as CI does)
test: $(VENV)/.installed-dev chromium
	$(BIN)/pytest $(ARGS)

# The dashboard's browser tests drive Debian's Chromium; installed here when missing and
# this runs as root (elsewhere those tests say what to install and are skipped).
chromium:
	@test -x /usr/bin/chromium || [ "$$(id -u)" != 0 ] || \
		(echo "Installing Chromium for the browser tests" && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null || \
		(apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null))

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.installed-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .
