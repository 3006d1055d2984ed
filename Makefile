# Waypoint: `make run` serves the API, `make test` checks it. Both work from a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
WORKERS ?= 1

.PHONY: run test lint format openapi migrate bench clean typescript lock lock-upgrade

# Exactly the versions (and files: hashes) in the lock, then Waypoint itself without resolving again.
$(BIN)/waypoint: pyproject.toml requirements-test.lock
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Waypoint needs Python 3.11+ (set PYTHON=python3.x)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --require-hashes -r requirements-test.lock
	$(BIN)/pip install --quiet --no-deps -e .
	@touch $@

run: $(BIN)/waypoint
	$(BIN)/waypoint migrate
	@echo "Waypoint on http://$(HOST):$(PORT) - API docs at http://$(HOST):$(PORT)/docs"
	$(BIN)/waypoint serve --host $(HOST) --port $(PORT) --workers $(WORKERS)

test: $(BIN)/waypoint
	$(BIN)/ruff check app tests migrations bench
	$(BIN)/ruff format --check app tests migrations bench
	WAYPOINT_TEST_DATABASE=sqlite $(BIN)/pytest
	@if [ -n "$$WAYPOINT_TEST_POSTGRES_URL" ]; then \
		echo "== PostgreSQL: $$WAYPOINT_TEST_POSTGRES_URL"; \
		WAYPOINT_TEST_DATABASE=postgres $(BIN)/pytest; \
	else \
		echo "== WAYPOINT_TEST_POSTGRES_URL is not set: PostgreSQL run skipped"; \
	fi

format: $(BIN)/waypoint
	$(BIN)/ruff check --fix app tests migrations bench
	$(BIN)/ruff format app tests migrations bench

openapi: $(BIN)/waypoint
	$(BIN)/waypoint openapi --output openapi/openapi.json

migrate: $(BIN)/waypoint
	$(BIN)/waypoint migrate

bench: $(BIN)/waypoint
	$(BIN)/python -m bench.run

# openapi-typescript types from openapi/openapi.json; clients/typescript/caller.ts under tsc --strict.
typescript:
	clients/typescript/check.sh

# The lock files, from pyproject.toml: requirements-test.lock (with the test extra: make run/test, CI)
# and requirements.lock (the image). `make lock` after editing pyproject.toml's dependencies keeps
# every other pin; `make lock-upgrade` moves everything to the newest versions allowed.
UV_VERSION := 0.13.9
COMPILE = UV_CACHE_DIR=build/uv-cache $(BIN)/uv pip compile pyproject.toml --quiet --universal \
	--python-version 3.11 --generate-hashes --custom-compile-command "make lock"
lock:
	@test -x $(BIN)/pip || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet uv==$(UV_VERSION)
	$(COMPILE) $(UPGRADE) --extra test -o requirements-test.lock
	$(COMPILE) $(UPGRADE) -c requirements-test.lock -o requirements.lock

lock-upgrade:
	$(MAKE) lock UPGRADE=--upgrade

clean:
	rm -rf $(VENV) var build *.egg-info
