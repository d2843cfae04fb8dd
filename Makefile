# Every target sets up what it needs: a project virtualenv (.venv) and a project-local
# Node.js 22 + AWS CDK CLI (node_modules). Nothing is installed globally.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(CURDIR)/node_modules/.bin:$(CURDIR)/$(BIN):$(PATH)
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1

.PHONY: all setup test lint typecheck pytest test-py39 demo synth bench clean

all: test

## First run: several minutes of downloads (aws-cdk-lib, moto, matplotlib); pip shows its progress.
$(BIN)/.installed: pyproject.toml
	@echo "setup 1/3: Python virtualenv in $(VENV)"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade --progress-bar on pip
	@echo "setup 2/3: swr with the dev, bench and local (emulator) extras, editable"
	@echo "  (pip shows each download; its last step, 'Installing collected packages', prints nothing until done)"
	$(BIN)/python -m pip install --progress-bar on -e '.[dev,bench,local]'
	touch $@

node_modules/.installed: package.json
	@echo "setup 3/3: Node.js 22 and the AWS CDK CLI into node_modules"
	npm install --no-audit --no-fund --loglevel=http
	touch $@

setup: $(BIN)/.installed node_modules/.installed

## The test command (README, CI): lint, then the type check and the whole suite side by side (mypy with
## the boto3 stubs takes about 1.5 min on a cold cache; pytest runs on 2 workers, pytest-xdist). Measured on
## this 2-core machine on 2026-12-02: 4 min 30 s for both (one pytest process: 5 min 20 s). The suite's
## output comes last; a failed type check prints its report and fails the target.
test: setup lint test-py39
	@echo "typecheck: mypy runs beside pytest (report in .mypy.log)"
	@$(BIN)/mypy > .mypy.log 2>&1 & mypy_pid=$$!; \
	  $(BIN)/pytest -n 2; pytest_rc=$$?; \
	  wait $$mypy_pid; mypy_rc=$$?; \
	  if [ $$mypy_rc -ne 0 ]; then cat .mypy.log; echo "typecheck failed" >&2; fi; \
	  [ $$pytest_rc -eq 0 ] && [ $$mypy_rc -eq 0 ]

## Python that runs on a node (not at synth): the system python3 there is 3.9 (Amazon Linux 2023,
## RHEL 9). vermin fails on anything newer. tests/agent keeps this list equal to what install.sh installs.
NODE_PYTHON := agent_config/swr_monitor.py

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/vermin --target=3.9- --no-tips --violations $(NODE_PYTHON)

## swr-monitor's own tests on Python 3.9, the nodes' python3 (vermin in `lint` is the static check).
## Debian's pypy3 implements Python 3.9 with the 3.9 standard library: `apt-get install pypy3 pypy3-venv`.
PY39 ?= pypy3
PY39_VENV := $(VENV)/py39
## Part of `make test`: it installs Debian's pypy3 itself when missing (CI runs as root on a fresh machine).
test-py39:
	@command -v $(PY39) >/dev/null || { echo "test-py39: installing Debian's pypy3 (Python 3.9) with apt-get"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pypy3 pypy3-venv >/dev/null; }
	@command -v $(PY39) >/dev/null || { echo "test-py39: no $(PY39); apt-get install pypy3 pypy3-venv" >&2; exit 1; }
	$(PY39) -c 'import sys; assert sys.version_info[:2] == (3, 9), sys.version'
	test -x $(PY39_VENV)/bin/pytest || { $(PY39) -m venv $(PY39_VENV) && $(PY39_VENV)/bin/python -m pip install --progress-bar on 'pytest>=8,<9'; }
	mkdir -p $(PY39_VENV)/src && ln -sfn $(CURDIR)/agent_config $(PY39_VENV)/src/swr_agent
	PYTHONPATH=$(PY39_VENV)/src $(PY39_VENV)/bin/pytest -q -p no:cacheprovider tests/agent/test_monitor.py

typecheck: $(BIN)/.installed
	$(BIN)/mypy

pytest: setup
	$(BIN)/pytest

## The main job: a local failover drill against moto on 127.0.0.1, no AWS account needed (the local extra).
demo: setup
	$(BIN)/swr demo

synth: setup
	cdk synth --quiet

bench: setup
	$(BIN)/python -m bench.run_all

clean:
	rm -rf $(VENV) node_modules cdk.out .pytest_cache .mypy_cache .ruff_cache
