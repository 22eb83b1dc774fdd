# The same commands run here and in CI (.ci/run calls `make test`).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test lint typecheck pytest bench bench-full compare clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

## run: start the PDP on 127.0.0.1:8080 with the shipped policies (SQLite, policies/default)
run: $(STAMP)
	$(BIN)/pdp serve

## test: lint, type-check and the whole test suite (AuthZEN interop cases included)
test: lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check pdp tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest -q

## bench: quick benchmarks (seconds); bench-full: the full sizes
bench: $(STAMP)
	$(BIN)/python -m benchmarks

bench-full: $(STAMP)
	$(BIN)/python -m benchmarks --full

## compare: this PDP beside Cerbos on the Todo scenario (needs ../shared)
compare: $(STAMP)
	PDP_BIN=$(BIN)/pdp ../shared/peers/cerbos/compare.sh

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .pdp build dist
