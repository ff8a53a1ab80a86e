# Everything a fresh machine needs: `make demo` and `make test` create .venv and install first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
ADAPTERS := $(patsubst %/pyproject.toml,%,$(wildcard adapters/*/pyproject.toml))
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench docs build clean

$(STAMP): pyproject.toml $(wildcard adapters/*/pyproject.toml)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev,agent,docs,celery]" $(foreach a,$(ADAPTERS),-e $(a)[test])
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/eki-whatsapp demo

# The Django adapter's tests run twice: on SQLite (with everything) and on PostgreSQL (without the
# slow gunicorn end-to-end test, which reads the SQLite file).
test: $(STAMP)
	$(PY) -m pytest -q
	EKI_DJANGO_DB=postgres $(PY) -m pytest -q -m "not slow" adapters/django/tests

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

bench: $(STAMP)
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

docs: $(STAMP)
	$(VENV)/bin/mkdocs build --strict

build: $(STAMP)
	$(PY) -m build --outdir dist .
	$(foreach a,$(ADAPTERS),$(PY) -m build --outdir dist $(a) &&) true

clean:
	rm -rf $(VENV) dist site .pytest_cache .mypy_cache .ruff_cache
