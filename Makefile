# One-command entry points. Everything runs inside .venv, created on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup run replay test lint check bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert (3, 11) <= sys.version_info[:2] < (3, 13), "cdi-stream needs Python 3.11 or 3.12"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# The main job, live: a local broker, a worker, the simulator and the DDM queue.
run: setup
	$(BIN)/cdi-stream demo

# The rules over the shipped sample stream, offline, with no broker.
replay: setup
	$(BIN)/cdi-stream rules check
	$(BIN)/cdi-stream replay examples/incidents.jsonl --until 2026-11-26T00:00:00Z --out examples/out-flags.jsonl
	@echo "flag changes written to examples/out-flags.jsonl"

lint: setup
	$(BIN)/ruff check cdi_stream tests bench deploy
	$(BIN)/ruff format --check cdi_stream tests bench deploy
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

bench: setup
	$(BIN)/python bench/bench_replay.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis
