# DTaaS developer and CI commands. See README.md.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.dtaas-installed
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

bench: setup
	$(BIN)/python -m devstack bench

clean: down
	rm -rf $(VENV) .stack
