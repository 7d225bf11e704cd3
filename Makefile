# SupportAI — the two commands are `make run` and `make test`; both set themselves up.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 8000
REQS_HASH := $(shell cat requirements.txt requirements-dev.txt | sha1sum | cut -c1-12)
STAMP  := $(VENV)/.installed-$(REQS_HASH)
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15
# Test processes in parallel (pytest-xdist; 0 = one process). Worker K uses Redis db
# (TEST_REDIS_URL's db - K): 15, 14, 13, 12 by default. On a machine shared with other
# checkouts, give each its own range: TEST_REDIS_URL=redis://127.0.0.1:6379/11 uses 11-8.
TEST_WORKERS ?= 4
XDIST := -n $(TEST_WORKERS) --dist loadgroup

.PHONY: setup run test test-fast lint format bench bench-render services browser clean

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	@rm -f $(VENV)/.installed-* && touch $@

setup: $(STAMP)

## Everything in the foreground: embedded Postgres, migrations, demo data, web, worker, beat.
run: setup
	PORT=$(PORT) $(BIN)/python scripts/run.py

## The whole suite against real Postgres (embedded), real Redis, real workers and Chromium;
## then the broker, cache, rate-limit and ingestion tests again with REDIS_URL unset (the
## README's default path; tests/test_default_path.py runs `make run`'s script that way too).
## Tests marked `alone` (latency under load they make) run by themselves after the parallel run.
test: setup services browser
	REDIS_URL=$(TEST_REDIS_URL) $(BIN)/python -m pytest -m "not alone" $(XDIST) $(PYTEST_ARGS)
	REDIS_URL=$(TEST_REDIS_URL) $(BIN)/python -m pytest -m alone $(PYTEST_ARGS) || test $$? -eq 5
	REDIS_URL= $(BIN)/python -m pytest -m without_redis $(XDIST) $(PYTEST_ARGS)

## The suite without the browser and chaos tests, for quick iteration.
test-fast: setup services
	REDIS_URL=$(TEST_REDIS_URL) $(BIN)/python -m pytest -m "not browser and not chaos and not stack" $(XDIST) $(PYTEST_ARGS)

services:
	@bash scripts/ensure_redis.sh

browser:
	@bash scripts/ensure_chromium.sh

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# `make bench BENCH=answer_trust` (or BENCH=shop,web_tier) runs a subset; the other blocks of
# docs/benchmarks.md keep their last figures. `make bench-render` runs nothing and puts the
# result files in .data/bench-results/ (e.g. from `python bench/shop.py`) in the document.
BENCH ?= $(BENCH_ONLY)
bench: setup services browser
	@bash scripts/ensure_wrk.sh
	BENCH_ONLY=$(BENCH) REDIS_URL=$(TEST_REDIS_URL) $(BIN)/python bench/run_all.py

bench-render:
	$(BIN)/python bench/run_all.py --render

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache
