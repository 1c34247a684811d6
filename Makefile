# One command runs the service, one runs the tests; both set everything up first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install run test lint schema lock neo4j-start neo4j-stop neo4j-status clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Serve the API; starts the local Neo4j when LINEAGEHUB_NEO4J_URI is unset.
run: install
	$(BIN)/lineagehub serve

## Lint, type-check and run the whole suite against a real Neo4j.
test: install lint
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts
	$(BIN)/mypy

## Renew constraints.txt: the newest releases pyproject.toml allows, from a clean venv
## (then run make test before committing it).
lock:
	rm -rf .lock-venv
	$(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet --upgrade pip
	.lock-venv/bin/python -m pip install --quiet -e '.[dev,bench]'
	{ head -n 2 constraints.txt; .lock-venv/bin/python -m pip freeze --exclude-editable | LC_ALL=C sort -f; } > constraints.txt.new
	mv constraints.txt.new constraints.txt
	rm -rf .lock-venv

## Regenerate schema.graphql from the code.
schema: install
	$(BIN)/lineagehub schema -o schema.graphql

neo4j-start: install
	$(BIN)/lineagehub neo4j start
neo4j-stop: install
	$(BIN)/lineagehub neo4j stop
neo4j-status: install
	$(BIN)/lineagehub neo4j status

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

## Benchmarks (bench/README.md) at SCALE nodes on a Neo4j of their own: make bench SCALE=1000000
SCALE ?= 100000
.PHONY: bench
bench: install
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,bench]'
	$(BIN)/python -m bench.run_all --nodes $(SCALE)
