# Every target sets up what it needs: a project virtualenv (.venv) and a project-local
# Node.js 22 + AWS CDK CLI (node_modules). Nothing is installed globally.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(CURDIR)/node_modules/.bin:$(CURDIR)/$(BIN):$(PATH)
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1

.PHONY: all setup test lint typecheck pytest demo synth bench clean

all: test

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $@

node_modules/.installed: package.json
	npm install --no-audit --no-fund --loglevel=error
	touch $@

setup: $(BIN)/.installed node_modules/.installed

## The test command (README, CI): lint, type-check, then the whole suite.
test: setup lint typecheck pytest

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(BIN)/.installed
	$(BIN)/mypy

pytest: setup
	$(BIN)/pytest

## The main job: a local failover drill against moto on 127.0.0.1, no AWS account needed.
demo: setup
	$(BIN)/swr demo

synth: setup
	cdk synth --quiet

bench: setup
	$(BIN)/python -m bench.run_all

clean:
	rm -rf $(VENV) node_modules cdk.out .pytest_cache .mypy_cache .ruff_cache
