# The two commands a newcomer needs: `make run` and `make test`. Everything else is a stage of those.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PACKAGES := libs/plumbing devstack services/identification services/referral services/exchange services/return gateway
PYTEST := $(PY) -m pytest -p no:cacheprovider

.PHONY: install run test lint unit integration contract smoke bench fuzz clean

$(VENV)/.installed: requirements.lock $(addsuffix /pyproject.toml,$(PACKAGES))
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes -r requirements.lock
	$(PY) -m pip install --quiet --no-deps $(addprefix -e ,$(PACKAGES))
	@touch $@

install: $(VENV)/.installed

run: install
	$(PY) -m devstack run

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

unit: install
	$(PYTEST) -q -m "not integration and not smoke" libs services gateway devstack tests/unit

integration: install
	$(PYTEST) -q -m "integration" libs services gateway tests

contract: install
	$(PYTEST) -q tests/contract

smoke: install
	$(PYTEST) -q -m smoke tests/smoke

test: lint unit contract integration smoke

bench: install
	$(PY) -m bench

clean:
	rm -rf $(VENV) .local
