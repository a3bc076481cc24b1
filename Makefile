# City twin — `make run` serves the sample city, `make test` runs the whole suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TWIN := $(VENV)/bin/twin
STORE ?= twin.db
HOST ?= 127.0.0.1
PORT ?= 8000
PG_URL ?= postgresql://postgres@127.0.0.1:5432/postgres
export TWIN_TEST_PG_URL ?= $(PG_URL)

.DEFAULT_GOAL := help

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | \
	  awk 'BEGIN {FS = ":.*## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[terrain,postgres]"
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed node_modules/.installed
	$(PY) -m pip install --quiet -e ".[terrain,postgres,bench,dev]"
	touch $@

# the viewer's three.js and 3d-tiles-renderer, and the Khronos glTF-Validator the tests run
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --omit=peer --loglevel=error
	touch $@

install: $(VENV)/.installed node_modules/.installed ## create .venv and node_modules, install the service

sample: $(VENV)/.installed ## import the sample sites into $(STORE) (once; re-running skips what is there)
	$(TWIN) --store $(STORE) import --site denhaag --skip-imported \
	  assets/denhaag_01/denhaag_01_lod2.city.json
	$(TWIN) --store $(STORE) import --site merewether --skip-imported --default-height 6 \
	  assets/merewether/merewether_dtm_1m_epsg32756.tif \
	  assets/merewether/merewether_houses_epsg32756.geojson

key: $(VENV)/.installed ## create the admin key in .twin/admin.key (once)
	@$(TWIN) --store $(STORE) keys create --role admin --name make-run \
	  --output .twin/admin.key --if-missing > /dev/null
	@echo "admin API key (header X-API-Key): $$(cat .twin/admin.key)"

run: sample key node_modules/.installed ## install, import the sample sites once, serve the API on $(HOST):$(PORT)
	$(TWIN) --store $(STORE) serve --host $(HOST) --port $(PORT)

services: ## check (and start if stopped) the PostgreSQL server the tests use
	@bash .ci/services

test: $(VENV)/.installed-dev services ## install what the tests need and run the whole suite
	$(PY) -m pytest

lint: $(VENV)/.installed-dev ## import-linter, ruff and mypy --strict
	$(VENV)/bin/lint-imports
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

bench: $(VENV)/.installed-dev ## import benchmark against cjio (not part of the tests)
	$(PY) bench/import_cityjson.py

clean: ## remove the venv, the store and caches
	rm -rf $(VENV) $(STORE) $(STORE)-wal $(STORE)-shm $(STORE).keys.json .twin .pytest_cache .mypy_cache .ruff_cache

.PHONY: help install sample key run services test lint bench clean

bench-crowd: $(VENV)/.installed-dev ## crowd drill vs JuPedSim on the shared venues (installs jupedsim, no viewer deps)
	$(PY) -m pip install --quiet --no-deps jupedsim shapely deprecated wrapt
	$(PY) bench/crowd_vs_jupedsim.py $(BENCH_CROWD_ARGS)

.PHONY: bench-crowd
