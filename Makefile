# Waypoint: `make run` serves the API, `make test` checks it. Both work from a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
WORKERS ?= 1

.PHONY: run test lint format openapi migrate bench clean typescript

$(BIN)/waypoint: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Waypoint needs Python 3.11+ (set PYTHON=python3.x)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
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

clean:
	rm -rf $(VENV) var build *.egg-info
