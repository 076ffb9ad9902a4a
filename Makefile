# Two commands for a newcomer: `make run` and `make test`. Every target is idempotent.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test unit check bench bench-peers soak stress clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "Python 3.11+ is required (found $$($(PYTHON) --version)); set PYTHON=python3.11"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: install
	@bash scripts/run-all.sh

test: install
	@bash scripts/test-with-broker.sh $(BIN)/pytest tests --ignore=tests/stress

unit: install
	$(BIN)/pytest tests/unit

check: install
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy

# Every performance figure against a baseline measured in the same run (~15 min; not in CI).
bench: install
	@bash scripts/test-with-broker.sh $(BIN)/python -m bench

# The throughput cases with the PySpark peer too (installs PySpark and its Kafka connector on
# first use: slow, hence not in `make bench`).
bench-peers: install
	@BENCH_ONLY=throughput BENCH_PEERS=quix,spark bash scripts/test-with-broker.sh $(BIN)/python -m bench

# `clickstream worker --processes auto` under live traffic for SOAK_MINUTES (default 30) at
# SOAK_RATE (5000) events/s: each worker process's RSS flat within 5% (first vs last 10 min
# after SOAK_WARMUP_MINUTES, default 5) and under 500 MB, else exit 1; CSV and PNG.
soak: install
	@$(BIN)/python -c 'import matplotlib' 2>/dev/null || $(BIN)/python -m pip install --quiet -e '.[bench]'
	@bash scripts/test-with-broker.sh $(BIN)/python -m bench.soak

# Crash-safety scenarios against the independent recount (~15 min; not in CI).
stress: install
	@bash scripts/test-with-broker.sh $(BIN)/pytest tests/stress -v -s -p no:randomly

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
