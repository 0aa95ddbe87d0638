# klout-spark: `make run` (set up, generate a sample, score it) and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SAMPLE := sample
SAMPLE_EVENTS ?= 300000
SAMPLE_DAYS ?= 30
SAMPLE_SEED ?= 7
ARGS ?=
BENCH_SIZES ?= S,M,L
BENCH_SEED ?= 7
TEST_WORKERS ?= 2
RELIABILITY_N ?= 20
RELIABILITY_SEED ?= 1
RELIABILITY_KILLS_PER_RERUN ?= 4

export SPARK_LOCAL_IP ?= 127.0.0.1
export PYTHONUNBUFFERED := 1

.PHONY: help install run sample sql-server test test-slow test-reliability test-all coverage bench reliability lint dist clean clean-lake check-java

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  make %-17s %s\n", $$1, $$2}'

check-java:
	@command -v java >/dev/null || { echo "Java 17 is required (java not found on PATH)"; exit 1; }
	@java -version 2>&1 | head -1 | grep -qE '"(17|21)[."]' || { echo "Java 17 (or 21) is required; found: $$(java -version 2>&1 | head -1)"; exit 1; }

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "Python 3.11 is required; set PYTHON=/path/to/python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	@touch $(STAMP)

install: check-java $(STAMP) ## create .venv and install klout-spark with its pinned stack

$(SAMPLE)/.done: $(STAMP)
	rm -rf $(SAMPLE)
	$(BIN)/klout-spark generate --events $(SAMPLE_EVENTS) --days $(SAMPLE_DAYS) --seed $(SAMPLE_SEED) --out $(SAMPLE)
	@touch $@

sample: install $(SAMPLE)/.done ## generate the synthetic sample dump (sample/)

run: install sample ## set up, generate a sample and run the daily pipeline on local Spark
	$(BIN)/klout-spark run --input $(SAMPLE) --identities $(SAMPLE)/_identities.csv $(ARGS)

sql-server: install ## serve the lakehouse over JDBC (Thrift) on 127.0.0.1:10000 until Ctrl-C (ARGS="--port N")
	$(BIN)/klout-spark serve-sql $(ARGS)

# Whole files to each worker, the longest first: see pytest_collection_modifyitems in tests/conftest.py.
test: install ## the test suite, slow end-to-end tests excepted, in TEST_WORKERS processes (prints its wall time)
	$(BIN)/python -m pytest -m "not slow" -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder --durations=12 $(ARGS)

# One process: these tests start JVMs of their own (two at once in the concurrency tests), so a
# second pytest worker only adds contention for the two cores (and timeouts) without more throughput.
test-slow: install ## the slow end-to-end, kill, cluster and server tests but the reliability ones, in one process (CI runs them after make test)
	$(BIN)/python -m pytest -m "slow and not reliability" --durations=0 --durations-min=10 $(ARGS)

test-reliability: install ## the kill harness (2 kill points) and a real full disk: about 15 min, not run by CI
	$(BIN)/python -m pytest -m reliability --durations=0 --durations-min=10 $(ARGS)

test-all: test test-slow test-reliability ## every test: CI's two tiers and the reliability tests

coverage: install ## every test, one process, with a coverage report
	$(BIN)/python -m pytest --cov=klout_spark --cov-report=term:skip-covered $(ARGS)

bench: install ## benchmark at BENCH_SIZES (default S,M,L; XL on request) -> bench/results.json, bench/results.md
	$(BIN)/klout-spark bench --sizes $(BENCH_SIZES) --seed $(BENCH_SEED) --out bench $(ARGS)

reliability: install ## kill the daily run at RELIABILITY_N (20) seeded points, rerun, compare all tables
	rm -rf reliability-work
	$(BIN)/python jobs/reliability.py --n $(RELIABILITY_N) --seed $(RELIABILITY_SEED) --kills-per-rerun $(RELIABILITY_KILLS_PER_RERUN) --work-dir reliability-work $(ARGS)

lint: install ## ruff
	$(BIN)/ruff check klout_spark jobs tests

dist: install ## build the wheel and a zip of klout_spark for spark-submit --py-files
	$(BIN)/pip wheel --quiet --no-deps -w dist .
	rm -f dist/klout_spark.zip && zip -qr dist/klout_spark.zip klout_spark -x '*__pycache__*'
	@ls -1 dist

clean-lake: ## delete the local lakehouse (all tables)
	rm -rf lakehouse spark-warehouse

clean: clean-lake ## delete the venv, sample, lakehouse and build output
	rm -rf $(VENV) $(SAMPLE) reliability-work dist build *.egg-info .pytest_cache .coverage bench/work bench/logs
