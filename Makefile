# The README's commands. Everything runs inside .venv, created on first use.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export DAGSTER_HOME := $(CURDIR)/.dagster
export MLFLOW_DISABLE_TELEMETRY := true
export DAGSTER_DISABLE_TELEMETRY := 1
export DO_NOT_TRACK := 1
# pip here is configured with extra local indexes; their "is ignored" notices are noise.
PIP_QUIET := 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }

.PHONY: help install browser run ui serve test lint format warehouse bench replay walk-forward ui-replay clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@echo "==> creating $(VENV) and installing (a few minutes on a fresh machine)"
	@start=$$(date +%s); \
	  test -x $(BIN)/python || $(PYTHON) -m venv $(VENV); \
	  $(BIN)/python -m pip install -q --upgrade pip $(PIP_QUIET); \
	  $(BIN)/python -m pip install -q -e '.[dev]' $(PIP_QUIET); \
	  echo "==> install took $$(( $$(date +%s) - start ))s"
	@touch $(STAMP)

install: $(STAMP)  ## create .venv and install the project with its dev tools

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	@mkdir -p $(DAGSTER_HOME)
	@cp dagster.yaml $(DAGSTER_HOME)/dagster.yaml

run: install $(DAGSTER_HOME)/dagster.yaml  ## install, then materialize the pipeline on the bundled sample
	@$(BIN)/market materialize

# Started from inside DAGSTER_HOME so Dagster does not warn about the project's own dagster.yaml.
ui: install $(DAGSTER_HOME)/dagster.yaml  ## the Dagster web UI (and daemon) on http://127.0.0.1:3000
	cd $(DAGSTER_HOME) && $(CURDIR)/$(BIN)/dagster dev -w $(CURDIR)/workspace.yaml -h 127.0.0.1 -p 3000

# The HTTP API over the lake and the registry (docs/SERVING.md). Off loopback (API_HOST=0.0.0.0)
# it refuses to start unless MARKET_API_TOKEN is set; every request then needs the bearer token.
API_HOST ?= 127.0.0.1
API_PORT ?= 8000
serve: install  ## the HTTP API on http://127.0.0.1:8000 (docs/SERVING.md; /docs for OpenAPI)
	@$(BIN)/market serve --host $(API_HOST) --port $(API_PORT)

# The browser tests drive Debian's chromium through Playwright (`executable_path`); installed here
# so a fresh machine needs nothing by hand (apt-get as root, or through sudo).
CHROMIUM ?= /usr/bin/chromium
browser:  ## install Debian's chromium for the browser tests, if missing
	@test -x $(CHROMIUM) || { \
	  echo "==> installing chromium (Debian package) for the browser tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

test: install browser  ## lint, then the test suite (real Dagster instance, real browser; no network)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest

lint: install  ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install  ## apply ruff's formatting and safe fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The replay has its own instance and data folder: replaying writes history as known on past
# dates into the lake, which must not replace the current data of `make run`. It steps on the
# retrain calendar (every 21 sessions) with the quick model profile by default; RESUME=1
# continues one that stopped.
FROM ?= 2024-07-01
TO ?= 2026-05-29
EVERY ?= 21
PROFILE ?= quick
RESUME ?=
REPLAY := DAGSTER_HOME=$(CURDIR)/.dagster-replay MARKET_DATA_DIR=$(CURDIR)/data/replay MARKET_MODEL_PROFILE=$(PROFILE)
replay: install  ## replay nightly runs, calendar/drift retrains and shadow promotion over FROM..TO (own instance)
	@$(if $(RESUME),,rm -rf .dagster-replay data/replay; )mkdir -p .dagster-replay && cp dagster.yaml .dagster-replay/dagster.yaml
	@$(REPLAY) $(BIN)/market replay --from $(FROM) --to $(TO) --every $(EVERY) $(if $(RESUME),--resume)

walk-forward: install $(DAGSTER_HOME)/dagster.yaml  ## the walk-forward record of every family (LSTMs included), cached per block
	@$(BIN)/market walk-forward --all

ui-replay: install  ## the web UI on the replay's instance (http://127.0.0.1:3000)
	cd .dagster-replay && $(REPLAY) $(CURDIR)/$(BIN)/dagster dev -w $(CURDIR)/workspace.yaml -h 127.0.0.1 -p 3000

warehouse: install  ## write data/warehouse.duckdb: views over the lake for the duckdb CLI
	@$(BIN)/market warehouse

bench: install  ## performance measurements (figures quoted in README.md)
	$(BIN)/python benchmarks/bench_validation.py
	$(BIN)/python benchmarks/bench_features.py
	$(BIN)/python benchmarks/bench_drift_calibration.py
	$(BIN)/python benchmarks/bench_health_false_alarms.py

clean:  ## remove local outputs (lake, landing, caches, Dagster history); keeps .venv and the sample
	rm -rf data/lake data/raw data/cache data/warehouse.duckdb data/mlflow data/optuna data/replay \
	  data/reports $(DAGSTER_HOME) .dagster-replay
