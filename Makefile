# Every target bootstraps .venv itself, so a fresh clone needs only Python 3.11+ and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# SAM CLI and cfn-lint live in their own venv: their pins must not constrain the service's.
TOOLS := .venv-tools
TOOLS_STAMP := $(TOOLS)/.installed

.PHONY: run test lint bench bench-quick build layer validate localstack clean opensearch redis-server

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

# The suites run on TEST_WORKERS pytest-xdist processes (2: CI's cores). Each worker starts its own Redis,
# OpenSearch node (~1 GB heap) and servers on free ports, so more workers need that much more memory.
TEST_WORKERS ?= 2
test: $(STAMP) $(TOOLS_STAMP) redis-server  ## lint, then unit, contract and integration suites (starts its own redis-server)
	$(BIN)/ruff check layers functions tests bench
	PATH="$(CURDIR)/$(TOOLS)/bin:$$PATH" $(BIN)/python -m pytest -q -n $(TEST_WORKERS)

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
build: $(TOOLS_STAMP)  ## sam build of the functions and the core layer (arm64: layers/core/Makefile → layers/build.sh)
	PATH="$(PY312_DIR):$$PATH" $(TOOLS)/bin/sam build

# The layer alone, e.g. `make layer LAYER_ARCH=x86_64 LAYER_OUT=/tmp/layer` (what bench.layer_cold_start runs).
LAYER_ARCH ?= arm64
LAYER_OUT ?= .aws-sam/layer-$(LAYER_ARCH)
layer:  ## the core layer into $(LAYER_OUT)/python for $(LAYER_ARCH) (arm64 or x86_64)
	PATH="$(PY312_DIR):$$PATH" bash layers/build.sh "$(LAYER_OUT)" "$(LAYER_ARCH)"

# LocalStack in host mode (no Docker) for tests/integration/test_localstack_stack.py: its own venv on
# Python 3.13, pinned where newer releases of its dependencies broke its start (cbor2, pyOpenSSL).
PY313 ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python3.13) $(shell command -v python3.13))
LOCALSTACK := .venv-localstack
$(LOCALSTACK)/.installed:
	$(PY313) -m venv $(LOCALSTACK)
	$(LOCALSTACK)/bin/pip install -q "localstack-core[runtime]==4.7.0" "cbor2<5.7" "cryptography>=43,<44" \
	  "pyopenssl<24.3" "service_identity<24.2"
	touch $@
localstack: $(LOCALSTACK)/.installed  ## the LocalStack venv the LocalStack tests start (SQS, Secrets Manager, CloudFormation)

# Both templates (the stack and its nested infra/ stack), by SAM's own validation, its lint, and cfn-lint.
SAM_ENV := SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1}
validate: $(TOOLS_STAMP)  ## sam validate, sam validate --lint and cfn-lint on template.yaml and infra/*.yaml
	@for t in template.yaml infra/*.yaml; do \
	  $(SAM_ENV) $(TOOLS)/bin/sam validate --template-file $$t >/dev/null && \
	  $(SAM_ENV) $(TOOLS)/bin/sam validate --lint --template-file $$t && \
	  $(TOOLS)/bin/cfn-lint $$t || exit 1; \
	done

clean:
	rm -rf $(VENV) $(TOOLS) $(LOCALSTACK) .pytest_cache .ruff_cache .mypy_cache .aws-sam
