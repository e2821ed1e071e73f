# Two commands for a fresh machine (Python >= 3.11, git, make):
#   make course   set up .venv, run every chapter with the smoke profile -> outputs/
#   make test     set up .venv, run ruff and the whole test suite (what CI runs)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PROFILE ?= smoke
OUT ?= outputs
DEVICE ?= auto
PYTEST_ARGS ?=

.PHONY: course test lint setup

# The environment is rebuilt only when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -qq --disable-pip-version-check -e ".[notebooks,test]"
	touch $@

setup: $(VENV)/.installed

course: setup
	$(BIN)/jepa-lite course --profile $(PROFILE) --out $(OUT) --device $(DEVICE)

lint: setup
	$(BIN)/ruff check .

test: lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)
