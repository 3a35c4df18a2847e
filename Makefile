# Two commands: `make serve` (set up, then serve the bundled example on :8080)
# and `make test` (set up, lint, run the whole suite).

# The venv's interpreter: Python 3.12 or newer when the machine has one (the mitmproxy addon
# needs it), on PATH or among pyenv's versions; python3 (3.11+) otherwise.
PYTHON ?= $(shell for p in python3.12 python3.13 \
	"$${PYENV_ROOT:-$$HOME/.pyenv}"/versions/3.12*/bin/python3.12 \
	"$${PYENV_ROOT:-$$HOME/.pyenv}"/versions/3.13*/bin/python3.13 python3; do \
	"$$p" -c 'import sys; assert sys.version_info >= (3, 11)' >/dev/null 2>&1 \
	&& { echo "$$p"; break; }; done)
PYVER := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
VENV ?= .venv
BIN := $(VENV)/bin
# Serving needs edgesim alone; the tools of `make test` come on top, so a first `make serve`
# installs only what it runs.
STAMP := $(VENV)/.installed-$(PYVER)
DEV_STAMP := $(VENV)/.installed-dev-$(PYVER)

.PHONY: install serve test lint format bench soak clean

$(STAMP): pyproject.toml
	@test -n "$(PYVER)" || { echo "no Python 3.11 or newer found (set PYTHON=...)" >&2; exit 1; }
	@if [ ! -x $(BIN)/python ] || [ "$$($(BIN)/python -c 'import sys; print("%d.%d" % sys.version_info[:2])')" != "$(PYVER)" ]; then \
		rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); fi
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

$(DEV_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(DEV_STAMP)

install: $(DEV_STAMP)

serve: $(STAMP)
	$(BIN)/edgesim serve distributions/example.yaml

lint: $(DEV_STAMP)
	$(BIN)/ruff check edgesim tests bench examples
	$(BIN)/ruff format --check edgesim tests bench examples
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest -q -n auto

format: $(DEV_STAMP)
	$(BIN)/ruff check --fix edgesim tests bench examples
	$(BIN)/ruff format edgesim tests bench examples

# The slow soaks: mixed load against a real `edgesim serve` while functions and origins
# misbehave; prints a table. EDGESIM_SOAK_REQUESTS=2000 make soak for a short one.
soak: $(DEV_STAMP)
	$(BIN)/python -m pytest -m slow -s -q tests/e2e/test_soak.py tests/e2e/test_fault_soak.py

# Every benchmark against a baseline measured in the same run (interleaved rounds, medians, CPU
# per request): one markdown table of ratios and targets, in under 10 minutes. Needs wrk;
# valgrind for the rows of instructions per request (they say so when it is missing).
# make bench BENCH_ARGS=--quick for a few seconds per row.
bench: $(DEV_STAMP)
	$(BIN)/python bench/run_all.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache
