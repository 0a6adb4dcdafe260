# DTaaS developer and CI commands. See README.md.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.dtaas-installed
# The bench's own virtualenv for the tools DTaaS is measured against (extra bench): dlt's s3fs pins an
# older botocore than the test environment's, so they do not share one.
BENCH_VENV := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.dtaas-installed
STACK := $(BIN)/python -m devstack

.PHONY: setup test test-fast demo up down status lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints/test.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -c constraints/test.txt -e ".[test]"
	@touch $(STAMP)

# The whole suite: unit tests, stand-in tests and the end-to-end runs on the Celery stack.
test: setup
	$(STACK) services
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Pure tests only: no server of any kind.
test-fast: setup
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

up: setup
	$(STACK) up

demo: setup
	$(STACK) demo

status: setup
	$(STACK) status

down:
	@if test -x $(BIN)/python; then $(STACK) down; else echo "nothing to stop (no .venv)"; fi

lint: setup
	$(BIN)/ruff check airflow_provider_dtaas dags devstack tests
	$(BIN)/ruff format --check airflow_provider_dtaas dags devstack tests
	$(BIN)/mypy

$(BENCH_STAMP): pyproject.toml constraints/test.txt constraints/bench.txt
	@test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --upgrade "pip>=24"
	$(BENCH_VENV)/bin/python -m pip install --quiet -c constraints/bench.txt -e ".[bench]"
	@touch $(BENCH_STAMP)

# Every benchmark, or the ones named: make bench BENCH="pg_source"
bench: setup $(BENCH_STAMP)
	$(BIN)/python -m devstack bench $(BENCH)

clean: down
	rm -rf $(VENV) $(BENCH_VENV) .stack
