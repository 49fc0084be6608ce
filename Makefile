# homesec-telemetry — developer entry points.
#   make run    set everything up, start the local stack (Event Hubs emulator, Azurite,
#               producer, consumer, sensor simulator) and show live progress
#   make test   set everything up, lint (ruff + mypy strict), run the whole test suite
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := .cache/stamps

.PHONY: help setup setup-run setup-system setup-system-build setup-system-prometheus setup-system-images setup-python setup-node native lint fmt test test-unit test-integration test-accelerators-off test-sdk-oldest run bench bench-emulator bench-emulator-stamp bench-sdk bench-tracing lock clean

help: ## list targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

setup: setup-system setup-python setup-node native ## install everything the project needs (idempotent)

setup-run: setup-python setup-node native ## only what `make run` needs (no Prometheus, buildah, debootstrap)

# Debian packages, by group (scripts/setup-system.sh): installed without starting any service they ship,
# and no service or process already there is ever stopped.
setup-system: ## all the Debian packages below
	@bash scripts/setup-system.sh build prometheus images

setup-system-build: ## Debian packages: gcc, libc6-dev, python3.11-dev (the compiled fold)
	@bash scripts/setup-system.sh build

setup-system-prometheus: ## Debian packages: prometheus, promtool (the tests run their own server)
	@bash scripts/setup-system.sh prometheus

setup-system-images: ## Debian packages: buildah, debootstrap (make images)
	@bash scripts/setup-system.sh images

$(STAMP)/python: requirements/runtime.txt requirements/dev.txt pyproject.toml
	@mkdir -p $(STAMP)
	@test -x $(PY) || python3.11 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements/dev.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e . 2>/dev/null \
	  || $(PY) -m pip install -q --disable-pip-version-check --no-deps -e .
	@touch $@

setup-python: $(STAMP)/python ## venv + pinned Python deps + the project (editable)

# The fold compiled with mypyc (homesec_runtime.native): rebuilt when its sources change; the plain modules
# load instead whenever the build does not match them.
NATIVE_SOURCES := $(addprefix services/homesec_domain/,dedup.py fold.py rollup.py) \
  services/homesec_runtime/native.py scripts/build_native.py
services/homesec_domain/_compiled/manifest.json: $(NATIVE_SOURCES) $(STAMP)/python
	$(PY) scripts/build_native.py --if-stale
	@touch $@

native: setup-system-build services/homesec_domain/_compiled/manifest.json ## compile the fold (mypyc; needs gcc)

$(STAMP)/node: package.json package-lock.json
	@mkdir -p $(STAMP)
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

setup-node: $(STAMP)/node ## Azurite from npm (pinned in package-lock.json)

lint: setup-python ## ruff + mypy --strict
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

fmt: setup-python ## apply ruff fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# After setup (the Debian packages first, then the other steps at once), lint, the suite and the two
# SDK-range runs go at the same time; each one's output is printed whole when it ends, and any failure fails
# `make test`. The suite runs on TEST_WORKERS pytest-xdist workers, each pulling the next test as it frees
# up (loadgroup; the slow tests first: tests/conftest.py), the SDK-range runs on SUBSET_WORKERS (0: in process).
TEST_WORKERS ?= 3
SUBSET_WORKERS ?= 0
.PHONY: test-suite
test: ## setup, then lint, the whole suite (unit, integration, chart, rules, images) and the SDK-range runs at once
	$(MAKE) --no-print-directory setup-system
	$(MAKE) --no-print-directory -j3 setup
	$(MAKE) --no-print-directory -j4 --output-sync=target lint test-suite test-accelerators-off test-sdk-oldest

test-suite: setup ## the whole suite (unit, integration, chart, rules, images) on TEST_WORKERS workers
	HOMESEC_EXPECT_NATIVE=1 $(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

# The accelerators (docs/contracts.md#sdk-versions) switched off: the public SDK paths only. The integration
# tests that move readings end to end through the service processes (both transports); the start-up,
# liveness and shutdown tests do not touch the accelerated paths, and the unit tests run both paths
# in-process already (tests/unit/*/test_accelerated_*.py, tests/unit/runtime/test_native*.py).
# (The longest ones that add nothing here stay with the main run: the 65 s production-settings backlog,
# the retries-off and emulator-restart scenarios.)
ACCELERATORS_OFF_TESTS ?= $(addprefix tests/integration/producer/,test_producer_process.py \
  test_producer_http.py) $(addprefix tests/integration/producer/test_producer_zero_loss.py::, \
  test_throttled_at_one_tu_every_ack_is_in_the_hub_exactly_once test_scale_out_under_burst_loses_nothing) \
  tests/integration/consumer/test_consumer_pipeline.py $(addprefix tests/integration/consumer/test_counted.py::, \
  test_resent_late_readings_after_sigkill_count_once test_smoke_sensor_restarts_then_alarms)
test-accelerators-off: setup ## the end-to-end service integration tests with HOMESEC_*_ACCELERATORS=off
	HOMESEC_PRODUCER_ACCELERATORS=off HOMESEC_CONSUMER_ACCELERATORS=off \
	  $(PY) -m pytest -q -n $(SUBSET_WORKERS) $(ACCELERATORS_OFF_TESTS) $(PYTEST_ARGS)

# The services on the oldest azure-eventhub of pyproject's range, in their own venv; the tests, the
# emulator (pinned to the lock's SDK) and Azurite run as usual. AMQP only (the WebSocket variants run with
# the lock's SDK), to keep .ci/run short.
SDK_OLDEST ?= 5.12.0
SDK_OLDEST_VENV := .cache/venv-sdk-oldest
SDK_OLDEST_TESTS ?= tests/integration/test_service_sdk.py tests/integration/producer/test_producer_zero_loss.py \
  tests/integration/consumer/test_consumer_pipeline.py
$(STAMP)/python-sdk-oldest-$(SDK_OLDEST): requirements/runtime.txt pyproject.toml scripts/sdk-oldest-venv.sh
	@mkdir -p $(STAMP)
	bash scripts/sdk-oldest-venv.sh $(SDK_OLDEST_VENV) $(SDK_OLDEST)
	@touch $@

test-sdk-oldest: setup $(STAMP)/python-sdk-oldest-$(SDK_OLDEST) ## a service integration subset on the oldest SDK
	HOMESEC_SERVICE_PYTHON=$(CURDIR)/$(SDK_OLDEST_VENV)/bin/python HOMESEC_EXPECT_SERVICE_SDK=$(SDK_OLDEST) \
	  $(PY) -m pytest -q -n $(SUBSET_WORKERS) $(SDK_OLDEST_TESTS) -k "not amqp_websockets" $(PYTEST_ARGS)

test-unit: setup-python ## fast unit tests only
	$(PY) -m pytest -q tests/unit $(PYTEST_ARGS)

test-integration: setup ## integration tests only
	$(PY) -m pytest -q tests/integration $(PYTEST_ARGS)

run: setup-run ## start the whole local pipeline and its sensor simulator (Ctrl-C stops it)
	$(PY) -m homesec_devstack.stack $(RUN_ARGS)

BENCH_TARGETS ?= bench-emulator bench-emulator-stamp bench-producer bench-producer-payload bench-producer-ab bench-producer-duplicates bench-consumer bench-alarms bench-sdk bench-tracing bench-producer-reference bench-producer-resend-memory
bench: setup ## all benchmarks (bench/); each writes its section of docs/benchmarks.md
	@for t in $(BENCH_TARGETS); do $(MAKE) --no-print-directory $$t || exit 1; done

bench-sdk: setup ## SDK paths: accelerators on vs off, AMQP vs WebSockets, producer and consumer (ratios, same run)
	$(PY) bench/sdk_paths.py --write docs/benchmarks.md $(BENCH_SDK_ARGS)

bench-emulator: setup ## Event Hubs emulator: send rate, 1 vs 2 consumer processes, SDK decode ceiling
	$(PY) bench/emulator_throughput.py --write docs/benchmarks.md $(BENCH_EMULATOR_ARGS)

bench-emulator-stamp: setup-python ## emulator: CPU per event of the broker's annotation stamping vs the reference splice
	$(PY) bench/emulator_stamp.py --write docs/benchmarks.md $(BENCH_EMULATOR_STAMP_ARGS)

bench-tracing: setup ## producer and consumer with tracing off vs on (OTLP to a local receiver), same run
	$(PY) bench/tracing_overhead.py --write docs/benchmarks.md $(BENCH_TRACING_ARGS)

lock: ## regenerate requirements/*.txt from pyproject (needs network)
	bash scripts/lock.sh

clean: ## remove local state (venv, caches, emulator data)
	rm -rf $(VENV) .cache .pytest_cache .mypy_cache .ruff_cache node_modules

# Component fragments (chart, images, ...) add their own targets here.
-include mk/*.mk
