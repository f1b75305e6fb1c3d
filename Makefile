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

.PHONY: help install run test test-fast lint fmt system-deps

help:
	@echo "make run        install into $(VENV), start weir at http://127.0.0.1:4200, run examples/ against it"
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

# The server on SQLite under ~/.weir at http://127.0.0.1:4200 with a worker on the
# `default` work pool; the examples are deployed (examples/weir.yaml) and each is run
# once, so there is something to look at at once. Ctrl-C stops both.
WEIR_URL ?= http://127.0.0.1:4200
run: install
	@$(BIN)/weir server start & server=$$!; worker=; \
	trap 'kill $$worker $$server 2>/dev/null; wait $$worker $$server 2>/dev/null' EXIT; \
	trap 'exit 130' INT TERM; \
	export WEIR_API_URL=$(WEIR_URL)/api; \
	$(BIN)/python -c 'import sys, time, urllib.request; \
	deadline = time.time() + 30; \
	exec("while time.time() < deadline:\n try:\n  urllib.request.urlopen(sys.argv[1] + \"/api/health\", timeout=1); sys.exit(0)\n except OSError: time.sleep(0.1)"); \
	sys.exit(1)' $(WEIR_URL) || { echo "weir server did not start (see above)." >&2; exit 1; }; \
	$(BIN)/weir work-pool inspect default >/dev/null 2>&1 || $(BIN)/weir work-pool create default --type process || exit 1; \
	(cd examples && ../$(BIN)/weir deploy --all) || { echo "deploying the examples failed." >&2; exit 1; }; \
	$(BIN)/weir worker start -p default & worker=$$!; \
	for deployment in orders-etl/hourly invoice-orders/adhoc close-books/month-end; do \
		$(BIN)/weir deployment run "$$deployment" || exit 1; \
	done; \
	echo "==> weir is running at $(WEIR_URL) (API docs at $(WEIR_URL)/docs) with a worker on the default pool."; \
	echo "    try: .venv/bin/weir deployment ls; .venv/bin/weir flow-run ls. Ctrl-C stops it."; \
	wait $$server

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

# Debian tools the tests drive for real: PgBouncer (the server is tested behind it).
# Installed when missing and we may (root with apt-get); otherwise its test skips locally
# and fails on CI, which must have it.
system-deps:
	@if ! command -v pgbouncer >/dev/null && [ ! -x /usr/sbin/pgbouncer ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "==> installing pgbouncer (apt-get)"; \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer >/dev/null 2>&1 || \
			{ apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer >/dev/null 2>&1; } || \
			echo "could not install pgbouncer; its test will be skipped (and fail on CI)."; \
		else echo "pgbouncer is not installed: apt-get install pgbouncer to run its test."; fi; \
	fi

test: lint system-deps
	@echo "==> pytest"
	@$(BIN)/pytest

test-fast: install
	@$(BIN)/pytest -m "not slow"
