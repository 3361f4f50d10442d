# The two commands of the README, and the rest.
#   make demo   set up .venv and run the demo on the embedded default (SQLite + DuckDB)
#   make test   set up .venv with dev extras; lint, type check, tests
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
RUN_STAMP := $(VENV)/.run-installed
DEV_STAMP := $(VENV)/.dev-installed
DEMO_ARGS ?=
PYTEST_ARGS ?=

.PHONY: demo test check lint typecheck unit bench bench-import bench-oneid bench-resolve bench-api bench-ledger bench-analytics clean

$(BIN)/python:
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "siyu needs Python >= 3.11"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(RUN_STAMP)

demo: $(RUN_STAMP)
	$(BIN)/siyu demo $(DEMO_ARGS)

test: check

check: lint typecheck unit

lint: $(DEV_STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(DEV_STAMP)
	$(BIN)/mypy

unit: $(DEV_STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Benchmarks write their figures to stdout as markdown rows; docs/benchmarks.md keeps them.
bench: bench-import bench-oneid bench-resolve

bench-import: $(DEV_STAMP)
	$(BIN)/python bench/bench_import.py --rows 1000000

bench-oneid: $(DEV_STAMP)
	$(BIN)/python bench/bench_oneid.py --nodes 10000000 --edges 30000000

bench-resolve: $(DEV_STAMP)
	$(BIN)/python bench/bench_resolve.py --nodes 1000000 --edges 3000000

bench-ledger: $(DEV_STAMP)
	$(BIN)/python bench/bench_ledger.py --members 10000 --seconds 10 --clients 4

# Needs wrk (apt-get install wrk) and the PostgreSQL server; asyncpg optional (a row more).
bench-api: $(DEV_STAMP)
	$(BIN)/python bench/bench_api.py --members 1000000 --seconds 15

# lifetimes (optional baseline) is not a dependency: PYTHONPATH=DIR with `pip install --target DIR lifetimes autograd dill`
bench-analytics: $(DEV_STAMP)
	$(BIN)/python bench/bench_analytics.py --members 1000000 --clv-orders 1000000

clean:
	rm -rf $(VENV) demo-data siyu-rejects siyu.db siyu.key .pytest_cache .mypy_cache .ruff_cache
