# Every target bootstraps .venv itself, so a fresh clone needs only Python 3.11+ and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# SAM CLI and cfn-lint live in their own venv: their pins must not constrain the service's.
TOOLS := .venv-tools
TOOLS_STAMP := $(TOOLS)/.installed

.PHONY: run test lint bench bench-quick build validate clean opensearch

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[local,aws,dev]'
	touch $(STAMP)

$(TOOLS_STAMP):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install -q --upgrade pip
	$(TOOLS)/bin/pip install -q aws-sam-cli cfn-lint
	touch $(TOOLS_STAMP)

run: $(STAMP)  ## the service on embedded defaults (SQLite + local embedder) at http://127.0.0.1:8000
	$(BIN)/agent-memory serve --host 127.0.0.1 --port 8000

test: $(STAMP) $(TOOLS_STAMP)  ## lint, then unit, contract and integration suites (starts its own redis-server)
	$(BIN)/ruff check layers functions tests bench
	PATH="$(CURDIR)/$(TOOLS)/bin:$$PATH" $(BIN)/python -m pytest -q

# A real OpenSearch 2.19 + k-NN on 127.0.0.1:$(OPENSEARCH_PORT) (Java 17 and Maven; built on first use).
# `OPENSEARCH_URL=http://127.0.0.1:9200 make run` then keeps long-term memory in it.
OPENSEARCH_PORT ?= 9200
opensearch:  ## the OpenSearch test node in the foreground until Ctrl-C (data in infra/opensearch-node/opensearch-data)
	OPENSEARCH_PORT=$(OPENSEARCH_PORT) infra/opensearch-node/run.sh

lint: $(STAMP)
	$(BIN)/ruff check layers functions tests bench
	$(BIN)/mypy

bench: $(STAMP)  ## benchmarks; results are printed and written to bench/results/
	$(BIN)/python -m bench all

# sam build needs the Lambda runtime's Python (3.12) on PATH; pyenv's is used when present.
PY312_DIR ?= $(dir $(firstword $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python3.12) $(shell command -v python3.12)))
build: $(TOOLS_STAMP)  ## sam build of the API function and the core layer
	PATH="$(PY312_DIR):$$PATH" $(TOOLS)/bin/sam build

validate: $(TOOLS_STAMP)
	$(TOOLS)/bin/sam validate --lint && $(TOOLS)/bin/cfn-lint template.yaml

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .ruff_cache .mypy_cache .aws-sam
