# One entry point for people and CI. Every target creates the virtual
# environment first, so each works on a fresh clone.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
CONFIG ?= config/gateway.yaml

.PHONY: run test lint typecheck unit quick bench install clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/lgsp-gateway serve --config $(CONFIG)

lint: $(STAMP)
	$(VENV)/bin/ruff check gateway adapters schemas tests bench
	$(VENV)/bin/ruff format --check gateway adapters schemas tests bench

typecheck: $(STAMP)
	$(VENV)/bin/mypy

unit: $(STAMP)
	$(PY) -m pytest

test: lint typecheck unit

# The edit-test loop: every test but those that start real OS processes or fuzz.
quick: $(STAMP)
	$(PY) -m pytest -m "not processes and not fuzz"

bench: $(STAMP)
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
