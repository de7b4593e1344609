# ByteOr Cloud: `make run` starts the product on the embedded default; `make test` runs
# everything CI runs. Both build the virtual environment from pinned versions first.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check -q
# Extra pytest arguments, e.g. `make test PYTEST_ARGS="-k readyz"`.
PYTEST_ARGS ?=

.PHONY: run test install install-test lint typecheck lock clean browser wrk bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml constraints.txt
	$(PIP) install -c constraints.txt -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PIP) install -c constraints.txt -e '.[test]'
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

run: install
	$(BIN)/byteor-cloud db upgrade
	$(BIN)/byteor-cloud serve

lint: install-test
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: install-test
	$(BIN)/mypy

# The UI tests drive Debian's Chromium through Playwright; Playwright's own browser
# download is never used (it cannot be fetched here, and we do not ship binaries).
browser:
	@test -x /usr/bin/chromium || (apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)

test: lint typecheck browser
	$(BIN)/python -m pytest -n 2 --dist loadfile $(PYTEST_ARGS)

# The benchmarks (not part of `test`): bench/agents.py loads the server with wrk, a C load
# generator, so that the client is not what gets measured.
wrk:
	@test -x /usr/bin/wrk || (apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk)

bench: install-test wrk
	$(BIN)/python bench/agents.py
	$(BIN)/python bench/jobs.py
	PYTHONPATH=src $(BIN)/python bench/compile.py

# Re-pin every dependency to the newest versions the ranges in pyproject.toml allow.
lock:
	rm -rf .lock-venv
	$(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install -q '.[test]'
	.lock-venv/bin/pip freeze --exclude byteor-cloud > constraints.txt
	rm -rf .lock-venv

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
