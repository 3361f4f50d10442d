# The two commands of the README, and the rest.
#   make demo   set up .venv and run the demo on the embedded default (SQLite + DuckDB)
#   make test   set up .venv with dev extras; lint, type check, tests
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
RUN_STAMP := $(VENV)/.run-installed
DEV_STAMP := $(VENV)/.dev-installed
# GrowthBook's engine in a venv of its own: gbstats 0.8.0 pins numpy<2 and pandas<2
GBSTATS_VENV  := .venv-gbstats
GBSTATS_STAMP := $(GBSTATS_VENV)/.installed
DEMO_ARGS ?=
PYTEST_ARGS ?= -n 2 --dist loadgroup  # both cores; the demo brand and Spark once each (tests/conftest.py)

.PHONY: demo test check lint typecheck unit browser console-assets bench bench-import bench-oneid bench-resolve bench-api bench-ledger bench-coupons bench-draws bench-analytics bench-console bench-matching bench-segments bench-messaging bench-outbox bench-guides clean

# The console's chart bundle (ECharts, built with esbuild from web/), shipped inside the
# package: rebuilt when web/ changes. Needs node and npm (the npm registry on first build).
CONSOLE_JS := src/siyu/console/static/console.js
WEB_SOURCES := web/package.json web/package-lock.json $(wildcard web/src/*.js)

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

# The reference tests/experiments/test_stats_against_gbstats.py checks experiments/stats.py
# against, run there as a subprocess (tests/experiments/gbstats_oracle.py). Wheels only.
$(GBSTATS_STAMP):
	$(PYTHON) -m venv $(GBSTATS_VENV)
	$(GBSTATS_VENV)/bin/python -m pip install --quiet --only-binary=:all: gbstats==0.8.0
	touch $@

$(CONSOLE_JS): $(WEB_SOURCES)
	cd web && npm ci --no-audit --no-fund && npm run build
	touch $@

console-assets: $(CONSOLE_JS)

# The console tests drive a real Chromium: the system's (Debian's package), never one
# downloaded by Playwright; with CJK fonts, so the Chinese pages' screenshots are legible.
browser:
	command -v chromium >/dev/null && fc-list :lang=zh | grep -q . || \
	  (apt-get update && apt-get install -y chromium fonts-noto-cjk)

# Without npm the demo still runs: it serves the API, and the console says how to build it.
demo: $(RUN_STAMP)
	@if command -v npm >/dev/null 2>&1; then $(MAKE) --no-print-directory console-assets; \
	else echo "npm not found: the console stays off until \`make console-assets\` builds it"; fi
	$(BIN)/siyu demo $(DEMO_ARGS)

test: check

check: lint typecheck unit

lint: $(DEV_STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports

typecheck: $(DEV_STAMP)
	$(BIN)/mypy

unit: $(DEV_STAMP) $(GBSTATS_STAMP) $(CONSOLE_JS) browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Benchmarks write their figures to stdout as markdown rows; docs/benchmarks.md keeps them.
bench: bench-import bench-oneid bench-resolve bench-outbox

bench-import: $(DEV_STAMP)
	$(BIN)/python bench/bench_import.py --rows 1000000

bench-oneid: $(DEV_STAMP)
	$(BIN)/python bench/bench_oneid.py --nodes 10000000 --edges 30000000

bench-resolve: $(DEV_STAMP)
	$(BIN)/python bench/bench_resolve.py --nodes 1000000 --edges 3000000

# Concurrent draws of one hot prize pool against a raw conditional UPDATE (docs/benchmarks.md).
bench-draws: $(DEV_STAMP)
	$(BIN)/python bench/bench_draws.py --seconds 10 --clients 4 --batch 250

bench-ledger: $(DEV_STAMP)
	$(BIN)/python bench/bench_ledger.py --members 10000 --seconds 10 --clients 4

# Coupon redemptions on one hot campaign: raw conditional UPDATEs per commit (baseline),
# redeem, redeem_many and the group commit, then the no-over-redemption checks.
bench-coupons: $(DEV_STAMP)
	$(BIN)/python bench/bench_coupons.py --seconds 6 --clients 4 --batch 100 --coupons 12000

# Needs wrk (apt-get install wrk) and the PostgreSQL server; asyncpg optional (a row more).
bench-api: $(DEV_STAMP)
	$(BIN)/python bench/bench_api.py --members 1000000 --seconds 15

# lifetimes (optional baseline) is not a dependency: PYTHONPATH=DIR with `pip install --target DIR lifetimes autograd dill`
# Every console page timed over HTTP on the 20,000-person demo (SQLite), against /healthz.
bench-console: $(DEV_STAMP) $(CONSOLE_JS)
	$(BIN)/python bench/bench_console.py --members 20000 --requests 200

bench-analytics: $(DEV_STAMP)
	$(BIN)/python bench/bench_analytics.py --members 1000000 --clv-orders 1000000

# Segments at 10M members (1M generated, landed ten times): previews against hand-written
# DuckDB SQL, fifty segments, the largest written back to PostgreSQL by COPY.
bench-segments: $(DEV_STAMP)
	$(BIN)/python bench/bench_segments.py --members 1000000 --copies 10

# Probabilistic matching on 1M synthetic members: blocking pairs, train + predict, and
# real-time scoring against Splink's own compare_records (docs/benchmarks.md).
bench-matching: $(DEV_STAMP)
	$(BIN)/python bench/bench_matching.py --records 1000000 --calls 1000 --candidates 20

# Planning one send to a 10M-member segment with consent and caps, against a bare INSERT
# ... SELECT of the same ids into an unindexed table (docs/benchmarks.md, issue #18).
bench-messaging: $(DEV_STAMP)
	$(BIN)/python bench/bench_messaging.py --members 10000000

# Delivering a planned send of 50k messages through the outbox's workers to a local
# receiver (1% failing first), against a raw loop of the same HTTP transport
# (docs/benchmarks.md, issue #18).
bench-outbox: $(DEV_STAMP)
	$(BIN)/python bench/bench_outbox.py --messages 50000

# Attribution, commission accrual, freeze release and the monthly statements of a month of a
# 10M-member brand's orders (2.3M), each timed against an INSERT ... SELECT of the month's
# orders, the statements checked against the ledger (docs/benchmarks.md, issue #19).
bench-guides: $(DEV_STAMP)
	$(BIN)/python bench/bench_guides.py --members 10000000

clean:
	rm -rf $(VENV) $(GBSTATS_VENV) web/node_modules $(CONSOLE_JS) test-artifacts demo-data siyu-rejects siyu.db siyu.key .pytest_cache .mypy_cache .ruff_cache
