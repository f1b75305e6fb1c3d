# weir's developer commands. On a fresh machine: `make run` or `make test`.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Only the folders that exist: git does not keep empty ones.
CHECK_PATHS := $(wildcard src tests benchmarks examples)

.PHONY: help install run test test-fast lint fmt

help:
	@echo "make run        install into $(VENV) and run weir (for now: every flow in examples/)"
	@echo "make test       install, lint, type-check and run the whole test suite"
	@echo "make test-fast  install and run the tests not marked slow"
	@echo "make lint       ruff check, ruff format --check, mypy"
	@echo "make fmt        ruff format and ruff check --fix"

install: $(STAMP)

# Re-installs only when pyproject.toml changes.
$(STAMP): pyproject.toml
	@if ! command -v $(PYTHON) >/dev/null; then \
		echo "weir needs Python 3.11 or newer, but there is no $(PYTHON) on PATH: install Python 3.11+ and run make again." >&2; exit 1; fi
	@if ! $(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then \
		echo "weir needs Python 3.11 or newer, but $(PYTHON) is $$($(PYTHON) -c 'import platform; print(platform.python_version())'): install Python 3.11+ and run make again." >&2; exit 1; fi
	@if [ -x $(BIN)/python ] && ! $(BIN)/python -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then \
		echo "==> $(VENV) has an old Python; recreating it"; rm -rf $(VENV); fi
	@if [ ! -x $(BIN)/python ]; then echo "==> creating $(VENV)"; $(PYTHON) -m venv $(VENV); fi
	@echo "==> installing weir and its dev tools into $(VENV)"
	@$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

# Until `weir server` exists, running weir means running the example flows.
run: install
	@shopt -s nullglob; examples=(examples/*.py); \
	if [ $${#examples[@]} -eq 0 ]; then echo "No example flows in examples/ yet."; exit 0; fi; \
	for example in "$${examples[@]}"; do \
		echo "==> $$example"; \
		$(BIN)/python "$$example" || { echo "$$example failed." >&2; exit 1; }; \
	done

lint: install
	@echo "==> ruff check"
	@$(BIN)/ruff check $(CHECK_PATHS)
	@echo "==> ruff format --check"
	@$(BIN)/ruff format --check $(CHECK_PATHS)
	@echo "==> mypy"
	@$(BIN)/mypy

fmt: install
	@$(BIN)/ruff format $(CHECK_PATHS)
	@$(BIN)/ruff check --fix $(CHECK_PATHS)

test: lint
	@echo "==> pytest"
	@$(BIN)/pytest

test-fast: install
	@$(BIN)/pytest -m "not slow"
