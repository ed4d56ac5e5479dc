# The two commands a newcomer needs: `make run` and `make test`. Everything else is a stage of those.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
# The services come from the registry (openapi/services.toml), read with the standard library before anything
# is installed; every other deployable is listed here once.
SERVICE_FOLDERS := $(shell $(PYTHON) tools/services.py folders)
ifeq ($(SERVICE_FOLDERS),)
$(error the service registry openapi/services.toml could not be read (see the message above))
endif
PACKAGES := openapi libs/plumbing devstack $(SERVICE_FOLDERS) gateway
PYTEST := $(PY) -m pytest -p no:cacheprovider

.PHONY: install run test lint unit integration contract smoke bench fuzz clean browser

$(VENV)/.installed: requirements.lock openapi/services.toml $(addsuffix /pyproject.toml,$(PACKAGES))
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
	$(PYTEST) -q -m "not integration and not smoke" libs services gateway devstack tests --ignore=tests/contract

# A real browser for the API reference test: Debian's chromium and chromium-driver, installed if missing.
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
		(apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null) || \
		(echo "chromium/chromedriver could not be installed: install Debian's chromium and chromium-driver"; exit 1)

integration: install browser
	$(PYTEST) -q -m "integration" libs services gateway tests

contract: install
	$(PYTEST) -q tests/contract

smoke: install
	$(PYTEST) -q -m smoke tests/smoke tests/fuzz

test: lint unit contract integration smoke

# The benchmark drives load with wrk and compares against nginx (Debian packages); both are installed if missing.
bench: install
	@command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk nginx-light) || \
		echo "wrk/nginx could not be installed: install them and run make bench again"
	$(PY) -m bench

# Full-size API fuzzing against the whole platform (started by the test session).
fuzz: install
	THB_FUZZ_RANDOM=1 THB_FUZZ_EXAMPLES=$${THB_FUZZ_EXAMPLES:-200} THB_FUZZ_SECONDS=$${THB_FUZZ_SECONDS:-3600} $(PYTEST) -q -m smoke tests/fuzz

clean:
	rm -rf $(VENV) .local
