# Two commands for a fresh machine (Python >= 3.11, git, make):
#   make course   set up .venv, run every chapter with the smoke profile -> outputs/
#   make test     set up .venv, run ruff and the whole test suite (what CI runs)
#   make test-fast  ruff and the tests not marked slow (development)
#   make results PROFILE=demo   a course run, then its page in docs/results/demo
#                  [ONLY="04 05"] [REPLACE=1]  chapter by chapter (docs/results/README.md)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PROFILE ?= smoke
OUT ?= outputs
DEVICE ?= auto
PYTEST_ARGS ?=

.PHONY: course results test test-fast test-learning lint setup

# The environment is rebuilt only when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -qq --disable-pip-version-check -e ".[notebooks,test]"
	touch $@

setup: $(VENV)/.installed

course: setup
	$(BIN)/jepa-lite course --profile $(PROFILE) --out $(OUT) --device $(DEVICE)

# docs/results/<profile>: a profile's course (demo: about 1.5 hours on a 2-core CPU; gpu: chapters
# 04-05 in 8.1 minutes on one H200, the rest not measured), from a clean checkout, then its
# numbers and figures as one page (demo unless PROFILE is given on the command line). Chapter by
# chapter: ONLY="04 05" runs those (the ones not yet run into OUT); the page keeps the chapters
# it already has from other commits unless REPLACE=1
RESULTS_PROFILE := $(if $(filter command line,$(origin PROFILE)),$(PROFILE),demo)
results: setup
	@git diff --quiet HEAD -- || { echo "make results: the checkout has uncommitted changes; \
	a results page names the commit that made it: commit or stash them first" >&2; exit 1; }
	$(BIN)/jepa-lite course --profile $(RESULTS_PROFILE) --out $(OUT)/$(RESULTS_PROFILE) \
		--device $(DEVICE) $(if $(ONLY),--only $(ONLY) --pending)
	$(BIN)/jepa-lite results $(OUT)/$(RESULTS_PROFILE) --dest docs/results $(if $(REPLACE),--replace)

lint: setup
	$(BIN)/ruff check .

# CI: every test but the learning runs (tests/test_learning.py, about 5 minutes of 2 cores:
# make test-learning), which would take CI past its 20 minutes. Two workers, a test file
# each at a time (pytest-xdist), the smoke course's file first; one thread per process, so
# that two trainings share two cores without spinning (docs/development.md has the numbers)
TEST_WORKERS ?= 2
test: lint
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(BIN)/python -m pytest -m "not learning" \
		-n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# C-JEPA and VICReg pretrained on generated scenes must beat their random initialisation
test-learning: setup
	$(BIN)/python -m pytest -m learning $(PYTEST_ARGS)

# the tests not marked slow: for development, minutes
test-fast: lint
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)
