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
# the twin's own Mosquitto (config/mosquitto.conf); `make run` falls back to a broker on 1883
export TWIN_MQTT_PORT ?= 1884
export TWIN_TEST_MQTT_URL ?= mqtt://127.0.0.1:$(TWIN_MQTT_PORT)

.DEFAULT_GOAL := help

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | \
	  awk 'BEGIN {FS = ":.*## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[terrain,postgres,ray,ifc]"
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed node_modules/.installed
	$(PY) -m pip install --quiet -e ".[terrain,postgres,ray,bench,dev,ifc]"
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
	  assets/merewether/merewether_houses_epsg32756.geojson assets/flood/merewether_road.geojson
	$(TWIN) --store $(STORE) import --site helsinki --skip-imported \
	  assets/traffic/helsinki_center.osm.pbf
	$(TWIN) --store $(STORE) import --site denhaag --skip-imported --at=78600,457900,30 \
	  assets/ifc/Duplex_A_20110907.ifc
	$(TWIN) --store $(STORE) import --site bellinge --skip-imported --crs EPSG:32632 \
	  assets/swmm/bellinge_small.inp
	$(TWIN) --store $(STORE) import --site oakland --skip-imported assets/crowd/west_oakland.osm

key: $(VENV)/.installed ## create the admin key in .twin/admin.key (once)
	@$(TWIN) --store $(STORE) keys create --role admin --name make-run \
	  --output .twin/admin.key --if-missing > /dev/null
	@echo "admin API key (header X-API-Key): $$(cat .twin/admin.key)"
	@echo "viewer: http://$(HOST):$(PORT)/#key=$$(cat .twin/admin.key)"
	@$(TWIN) --store $(STORE) keys create --role pilot --name make-run-pilot \
	  --scope $$($(TWIN) --store $(STORE) query --site denhaag --prefix "" --kind IfcBuilding \
	    --json | $(PY) -c 'import json,sys; print(json.load(sys.stdin)["sites"]["denhaag"][0]["code"])') \
	  --output .twin/pilot.key --if-missing > /dev/null
	@echo "unit pilot (the IFC Duplex in Den Haag): http://$(HOST):$(PORT)/?site=denhaag#key=$$(cat .twin/pilot.key)"

run: sample key node_modules/.installed ## install, import the samples once, serve the API and viewer on $(HOST):$(PORT)
	@bash .ci/services broker || echo "live: the twin's broker did not start (make broker)"; \
	if (exec 3<>/dev/tcp/127.0.0.1/$(TWIN_MQTT_PORT)) 2>/dev/null; then mqtt=mqtt://127.0.0.1:$(TWIN_MQTT_PORT); proto='?protocol=3.1.1'; \
	elif (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null; then mqtt=mqtt://127.0.0.1:1883; proto=; \
	else mqtt=; fi; \
	if [ -n "$$mqtt" ]; then \
	  ds=$$($(TWIN) --store $(STORE) live-demo --site denhaag) && \
	  rooms=$$($(TWIN) --store $(STORE) live-demo --site denhaag --unit) && \
	  echo "live: MQTT ingest from $$mqtt; replaying a measured crowd recording into datastream $$ds" && \
	  echo "live: people counters in the Duplex's rooms replay $$rooms" && \
	  ( $(TWIN) run replay assets/live/bottleneck_density.csv --column density_p_per_m2 \
	      --datastream $$ds --loop --json --mqtt $$mqtt > .twin/replay.log 2>&1 & echo $$! > .twin/replay.pid ); \
	  ( $(TWIN) run replay $$rooms --column people --loop --json --mqtt $$mqtt > .twin/replay-unit.log 2>&1 & \
	      echo $$! > .twin/replay-unit.pid ); \
	  trap 'kill $$(cat .twin/replay.pid) $$(cat .twin/replay-unit.pid) 2>/dev/null' EXIT INT TERM; \
	  TWIN_MQTT_URL="$$mqtt$$proto" $(TWIN) --store $(STORE) serve --host $(HOST) --port $(PORT); \
	else \
	  echo "live: no MQTT broker on 127.0.0.1:$(TWIN_MQTT_PORT) or 1883, serving without live ingest"; \
	  $(TWIN) --store $(STORE) serve --host $(HOST) --port $(PORT); \
	fi

broker: ## start the twin's own Mosquitto (config/mosquitto.conf) on 127.0.0.1:$(TWIN_MQTT_PORT), state in .twin/mosquitto/
	@bash .ci/services broker

services: ## check (and start if stopped) PostgreSQL, the system MQTT broker and the twin's own broker the tests use
	@bash .ci/services

browser: ## install Debian's Chromium and ChromeDriver for the viewer's browser test (once)
	@bash .ci/browser

test: $(VENV)/.installed-dev services browser ## install what the tests need and run the whole suite, then the API suite served
	$(PY) -m pytest
	$(MAKE) --no-print-directory test-served

test-served: $(VENV)/.installed-dev services ## the API suite against the real `twin serve --workers 4`
	TWIN_TEST_SERVE_WORKERS=4 $(PY) -m pytest tests/api

lint: $(VENV)/.installed-dev ## import-linter, ruff and mypy --strict
	$(VENV)/bin/lint-imports
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

bench: $(VENV)/.installed-dev ## import benchmark against cjio (not part of the tests)
	$(PY) bench/import_cityjson.py

clean: ## remove the venv, the store and caches
	rm -rf $(VENV) node_modules $(STORE) $(STORE)-wal $(STORE)-shm $(STORE).keys.json $(STORE).cache .twin .pytest_cache .mypy_cache .ruff_cache

.PHONY: help install sample key run broker services browser test lint bench bench-serving bench-tiles clean

bench-serving: $(VENV)/.installed-dev ## tile serving under 50 clients: our API against nginx (installs nginx, wrk)
	@command -v wrk >/dev/null && test -x /usr/sbin/nginx || \
	  (DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx-light wrk >/dev/null || \
	   DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx wrk >/dev/null)
	$(PY) bench/tiles_serving.py

bench-runs: $(VENV)/.installed-dev ## API latency with 0 vs 4 drills running; 20 traffic drills serial/pool/Ray (installs wrk)
	@command -v wrk >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk >/dev/null
	$(PY) bench/runs.py
.PHONY: bench-runs

# VTK renders PNG snapshots off-screen through EGL (render/images.py); the wheels link the
# system's libEGL, which Debian ships as libegl1 + libegl-mesa0
$(VENV)/.egl-checked:
	@bash .ci/browser egl
	@mkdir -p $(VENV) && touch $@

$(VENV)/.installed-dev: $(VENV)/.egl-checked

bench-tiles: $(VENV)/.installed-dev ## tileset build time and peak memory for Den Haag tiled to 25k and 100k buildings
	$(PY) bench/tiles_scale.py

bench-traffic: $(VENV)/.installed-dev ## traffic drill against UXsim (Python and C++ engines), not part of the tests
	$(PY) bench/traffic_vs_uxsim.py --repeat 5
.PHONY: bench-traffic

bench-ingest: $(VENV)/.installed-dev broker ## live ingest: MQTT -> store/latest/rules/stream vs a bare subscriber (not part of the tests)
	$(PY) bench/ingest.py --broker $(TWIN_TEST_MQTT_URL) --observations 200000 --batch 500 --repeat 3
	$(PY) bench/ingest.py --broker $(TWIN_TEST_MQTT_URL) --observations 200000 --batch 100 --rate 20000 --repeat 3
	$(PY) bench/ingest.py --broker $(TWIN_TEST_MQTT_URL) --mode single --rate 20000 --seconds 30 --publishers 2 --repeat 3

.PHONY: bench-ingest

bench-flood: $(VENV)/.installed-dev ## flood drill: ours vs SWMM on the real networks, and the Merewether surface run
	$(PY) bench/flood_vs_swmm.py
	$(PY) bench/flood_surface.py

.PHONY: bench-flood

bench-crowd: $(VENV)/.installed-dev ## crowd drill vs JuPedSim on the shared venues (installs jupedsim, no viewer deps)
	$(PY) -m pip install --quiet --no-deps jupedsim shapely deprecated wrapt
	$(PY) bench/crowd_vs_jupedsim.py $(BENCH_CROWD_ARGS)

.PHONY: bench-crowd

bench-ifc: $(VENV)/.installed-dev ## IFC import against bare IfcOpenShell tessellation (not part of the tests)
	$(PY) bench/import_ifc.py

.PHONY: bench-evacuation

bench-evacuation: $(VENV)/.installed-dev ## Duplex evacuation: wall time, zone model vs the crowd cell model on Level 1
	$(PY) bench/evacuation.py
