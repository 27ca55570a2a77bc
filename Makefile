# Operator entry points. Both work on a fresh machine with Python 3.11+.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test lint install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

## make run: migrate, ensure a demo admin, serve http://127.0.0.1:8000 (SQLite, DEBUG on)
run: $(STAMP)
	DJANGO_DEBUG=true $(PY) manage.py migrate --noinput
	DJANGO_DEBUG=true $(PY) manage.py demoadmin
	DJANGO_DEBUG=true $(PY) manage.py runserver 127.0.0.1:8000

## make lint: ruff and the migrations check
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	env -u DATABASE_URL $(PY) manage.py makemigrations --check --dry-run

## make test: lint, then the whole suite (browser tests included)
test: lint
	$(PY) -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache
