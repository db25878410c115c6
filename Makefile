# Every target bootstraps .venv itself, so a fresh clone needs only Python 3.11+ and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench bench-quick build validate clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[local,aws,dev]'
	touch $(STAMP)

run: $(STAMP)  ## the service on embedded defaults (SQLite + local embedder) at http://127.0.0.1:8000
	$(BIN)/agent-memory serve --host 127.0.0.1 --port 8000

test: $(STAMP)  ## unit, contract and integration suites (starts redis-server on a free loopback port)
	$(BIN)/ruff check layers functions tests bench
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check layers functions tests bench
	$(BIN)/mypy

bench: $(STAMP)  ## benchmarks; results are printed and written to bench/results/
	$(BIN)/python -m bench all

build: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" sam build

validate: $(STAMP)
	sam validate --lint && cfn-lint template.yaml

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .aws-sam
