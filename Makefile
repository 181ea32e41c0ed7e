# integration-service: local development targets. `make run` starts the whole system,
# `make test` runs the test suite (the gate), `make lint` runs ruff and mypy.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STATE_DIR ?= .state
export STATE_DIR

.PHONY: help setup services migrate worker worker-high worker-bulk beat flower emulator run demo \
        test lint mypy format bench clean

help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test,dev]'
	@# Once in the dev extra: its redis 4 stubs would hide redis's own types from mypy.
	@$(BIN)/pip uninstall --quiet --yes types-redis 2>/dev/null || true
	touch $@

setup: $(VENV)/.installed ## create the virtualenv and install the project

services: ## start PostgreSQL, Redis, RabbitMQ and OpenBao (dev) when they are down
	bash deploy/local/services.sh --openbao

migrate: setup services ## apply Alembic migrations to DATABASE_URL
	$(BIN)/alembic upgrade head

worker: setup ## one worker serving every queue
	$(BIN)/celery -A integration_service.celery_app --quiet worker --pool=threads --concurrency=8 \
		--queues=high,mid,low --hostname=worker@%h --loglevel=INFO

worker-high: setup ## a worker for interactive logins only (queue high)
	$(BIN)/celery -A integration_service.celery_app --quiet worker --pool=threads --concurrency=8 \
		--queues=high --hostname=high@%h --loglevel=INFO

worker-bulk: setup ## a worker for sends, reconnects and sweeps (queues mid, low)
	$(BIN)/celery -A integration_service.celery_app --quiet worker --pool=threads --concurrency=8 \
		--queues=mid,low --hostname=bulk@%h --loglevel=INFO

beat: setup ## the periodic scheduler
	$(BIN)/celery -A integration_service.celery_app --quiet beat --loglevel=INFO \
		--schedule=$(STATE_DIR)/celerybeat-schedule

# Flower's credentials: FLOWER_BASIC_AUTH, else the pair `make run` keeps in $(STATE_DIR)/flower-auth.
flower: setup ## the operators' dashboard on 127.0.0.1:5555 (basic auth)
	$(if $(FLOWER_BASIC_AUTH),,FLOWER_BASIC_AUTH_FILE=$(STATE_DIR)/flower-auth) \
		$(BIN)/python -m integration_service.observability.flower --address=127.0.0.1 --port=5555

emulator: setup ## the local Telegram emulator on 127.0.0.1:8443
	$(BIN)/integration-service emulator --host 127.0.0.1 --port 8443 --state-dir $(STATE_DIR)/emulator

run: setup services ## start the whole system on local defaults (Ctrl-C stops it)
	$(BIN)/integration-service run --state-dir $(STATE_DIR)

demo: setup ## against a running `make run`: connect accounts, send, validate, report
	$(BIN)/python -m integration_service.devserver.demo --state-dir $(STATE_DIR)

test: setup ## run the test suite against the real local services
	bash deploy/local/services.sh --openbao
	$(BIN)/pytest -q

lint: setup ## ruff (lint + format check) and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

mypy: setup
	$(BIN)/mypy

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: setup services ## run every benchmark in bench/
	@for b in bench/*_bench.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf .pytest_cache .mypy_cache .ruff_cache
