# Each target installs what it needs: a virtual environment from pyproject.toml and, for
# the distributed mode and the tests, the Kafka broker's jars from Maven Central.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=
# make up BROKERS=3: a three-broker KRaft cluster (replication 3, min.insync.replicas 2)
BROKERS ?= 1

.PHONY: run test up down lint bench schemas kafka-jars clean help chaos

help:
	@echo "make run    - the whole system in one process (embedded PostgreSQL, port 8000)"
	@echo "make test   - every test, against real PostgreSQL and a real Kafka broker"
	@echo "make up     - Kafka + PostgreSQL + four service processes (ports 8001-8004);"
	@echo "              BROKERS=3 for a three-broker cluster"
	@echo "make chaos  - the full chaos run (>= 10,000 operations, brokers, PostgreSQL and"
	@echo "              services killed and restarted on a three-broker cluster)"
	@echo "make down   - stop what 'make up' started"
	@echo "make lint   - ruff and mypy"
	@echo "make bench  - benchmarks; figures printed and written to bench-results/"

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

kafka-jars: $(STAMP)
	$(BIN)/ila kafka fetch

run: $(STAMP)
	$(BIN)/ila run

test: $(STAMP) kafka-jars
	$(BIN)/python -m pytest $(PYTEST_ARGS)

up: $(STAMP) kafka-jars
	$(BIN)/ila up --brokers $(BROKERS)

chaos: $(STAMP) kafka-jars
	ILA_CHAOS_OPS=$${ILA_CHAOS_OPS:-10000} $(BIN)/python -m pytest -s -m chaos tests/chaos $(PYTEST_ARGS)

down: $(STAMP)
	$(BIN)/ila down

lint: $(STAMP)
	$(BIN)/ruff check shared services ila tests bench
	$(BIN)/mypy

schemas: $(STAMP)
	$(BIN)/ila schemas

bench: $(STAMP) kafka-jars
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .cache var test-artifacts bench-results
