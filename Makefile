# Two commands: `make serve` (set up, then serve the bundled example on :8080)
# and `make test` (set up, lint, run the whole suite).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install serve test lint format bench soak clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

serve: $(STAMP)
	$(BIN)/edgesim serve distributions/example.yaml

lint: $(STAMP)
	$(BIN)/ruff check edgesim tests bench examples
	$(BIN)/ruff format --check edgesim tests bench examples
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest -q -n auto

format: $(STAMP)
	$(BIN)/ruff check --fix edgesim tests bench examples
	$(BIN)/ruff format edgesim tests bench examples

# The slow soaks: mixed load against a real `edgesim serve` while functions and origins
# misbehave; prints a table. EDGESIM_SOAK_REQUESTS=2000 make soak for a short one.
soak: $(STAMP)
	$(BIN)/python -m pytest -m slow -s -q tests/e2e/test_soak.py tests/e2e/test_fault_soak.py

bench: $(STAMP)
	$(BIN)/python bench/bench_runtime.py
	$(BIN)/python bench/bench_cache.py
	$(BIN)/python bench/bench_streaming.py

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache
