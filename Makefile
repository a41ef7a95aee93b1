# Car Studio: `make run` serves the app, `make check` runs the fast tier (lint, types and the
# tests that need no other process, with the exhaustive tables sampled), `make test` runs everything.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Tests that need more than the test process: Chromium, Car Studio server or worker processes,
# the machine's Redis and PostgreSQL (markers set in tests/conftest.py and the test files).
SLOW_TESTS := browser or process or scale
# The fast tests mostly wait on sockets and threads, so twice as many workers as cores; idle
# workers take tests queued for busy ones, so no worker is left with a long tail.
WORKERS ?= $(shell echo $$(( $$(nproc 2>/dev/null || echo 1) * 2 )))
IN_PROCESS_TESTS = $(BIN)/pytest -q --ignore=tests/browser -n $(WORKERS) --dist worksteal
# pytest rewrites the asserts of its plugins (hypothesis, schemathesis) at every start unless it
# may keep the result as bytecode: without that, each test worker starts seconds later.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: run check test lint types chromium exiftool bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,scale]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/carstudio serve

# The quick Hypothesis profile tries each property on fewer examples (tests/conftest.py); tests
# marked `exhaustive` (the rest of the fault table and of the fuzzed operations, every hostile
# value in one batch, the status stress run) are left to `make test`.
check: lint types
	$(IN_PROCESS_TESTS) -m "not ($(SLOW_TESTS) or exhaustive)" --hypothesis-profile=check

test: chromium exiftool lint types
	$(IN_PROCESS_TESTS) -m "not ($(SLOW_TESTS))"
	$(BIN)/pytest -m "$(SLOW_TESTS)"

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

types: $(STAMP)
	$(BIN)/mypy

chromium:
	@scripts/ensure-chromium

exiftool:
	@scripts/ensure-exiftool

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) build src/*.egg-info
