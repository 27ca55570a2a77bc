# Operator entry points. Both work on a fresh machine with Python 3.11+.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PORT   ?= 8000

.PHONY: run test lint install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

# The translations (locale/*/LC_MESSAGES/django.po) compiled to .mo, which
# are not committed; by Python alone (iam/catalogues.py), no gettext needed.
MO := $(patsubst %.po,%.mo,$(wildcard locale/*/LC_MESSAGES/django.po))
$(MO): %.mo: %.po $(STAMP)
	$(PY) -m iam.catalogues >/dev/null

install: $(STAMP) $(MO)

## make run: migrate, apply the demo's access model (deploy/access.yaml), ensure a demo admin,
## serve http://localhost:$(PORT) (SQLite, DEBUG on) with the worker beside it
## (it sends the mail and runs the maintenance); Ctrl-C stops both.
## localhost, not 127.0.0.1: browsers refuse security keys and passkeys on an IP address.
## /metrics answers this machine without a token here (README "Metrics"); the server and the
## worker count into one metrics folder, emptied at each start.
run: install
	DJANGO_DEBUG=true $(PY) manage.py migrate --noinput
	DJANGO_DEBUG=true $(PY) manage.py access apply deploy/access.yaml
	DJANGO_DEBUG=true $(PY) manage.py demoadmin --port $(PORT)
	export PROMETHEUS_MULTIPROC_DIR="$${PROMETHEUS_MULTIPROC_DIR:-$${TMPDIR:-/tmp}/iam-metrics-$(PORT)}" \
	  IAM_METRICS_ALLOW="$${IAM_METRICS_ALLOW-127.0.0.1,::1}"; \
	mkdir -p "$$PROMETHEUS_MULTIPROC_DIR" && rm -f "$$PROMETHEUS_MULTIPROC_DIR"/*.db; \
	DJANGO_DEBUG=true $(PY) manage.py worker --interval 1 & worker=$$!; \
	trap 'kill $$worker 2>/dev/null; wait $$worker 2>/dev/null' EXIT; trap 'exit 0' INT TERM; \
	DJANGO_DEBUG=true $(PY) manage.py runserver localhost:$(PORT)

## make lint: ruff and the migrations check
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	env -u DATABASE_URL $(PY) manage.py makemigrations --check --dry-run

## make test: lint, then the whole suite (browser tests included)
test: lint
	$(PY) -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache $(MO)
