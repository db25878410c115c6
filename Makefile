# Every target bootstraps .venv itself, so a fresh clone needs only Python 3.11+ and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# SAM CLI and cfn-lint live in their own venv: their pins must not constrain the service's.
TOOLS := .venv-tools
TOOLS_STAMP := $(TOOLS)/.installed

.PHONY: run test lint bench bench-quick build validate clean opensearch redis-server

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

PORT ?= 8000
run: $(STAMP)  ## the service on embedded defaults (SQLite + local embedder) at http://127.0.0.1:$(PORT)
	$(BIN)/agent-memory serve --host 127.0.0.1 --port $(PORT)

# The Redis suites start their own redis-server 7+ (the scripts use `#!lua`); PyPI's bundled servers
# are Redis 6. Installed from the OS packages where we may (root with apt-get), else one line says how.
redis-server:
	@version=$$(redis-server --version 2>/dev/null | sed -n 's/.*v=\([0-9]*\)\..*/\1/p'); \
	if [ -z "$$version" ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "make: installing redis-server from the OS packages (apt-get)"; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server >/dev/null || exit 1; \
	  version=$$(redis-server --version | sed -n 's/.*v=\([0-9]*\)\..*/\1/p'); \
	fi; \
	if [ -z "$$version" ] || [ "$$version" -lt 7 ]; then \
	  echo "make test needs redis-server 7 or newer on PATH: sudo apt-get install redis-server (or brew install redis)"; \
	  exit 1; \
	fi

test: $(STAMP) $(TOOLS_STAMP) redis-server  ## lint, then unit, contract and integration suites (starts its own redis-server)
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
