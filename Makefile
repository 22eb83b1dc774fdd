# The same commands run here and in CI (.ci/run calls `make test`).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-runtime
DEV    := $(VENV)/.installed-dev

.PHONY: install install-dev run test test-deep lint typecheck policies pytest docs bench bench-full bench-mcp bench-store bench-auth wrk compare clean

# `make run` needs the runtime dependencies only; the checks need the development tools too.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $(STAMP)

$(DEV): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP) $(DEV)

install: $(STAMP)
install-dev: $(DEV)

## run: start the PDP on 127.0.0.1:8080 with the shipped policies (SQLite, policies/default)
run: $(STAMP)
	$(BIN)/pdp serve

## test: lint, type-check, the shipped policy sets' own checks and tests, the documentation
## build, the whole test suite
test: lint typecheck policies docs pytest

## lint: ruff, and the import contracts of .importlinter (layers, no cycles, adapters, light packages)
lint: $(DEV)
	$(BIN)/ruff check pdp tests benchmarks tools
	$(BIN)/lint-imports

typecheck: $(DEV)
	$(BIN)/mypy

## policies: what a policy author's CI runs, on every shipped policy set
policies: $(DEV)
	$(BIN)/pdp fmt --check policies
	$(BIN)/pdp check --strict policies/*/
	$(BIN)/pdp test policies/*/

pytest: $(DEV)
	$(BIN)/pytest -q

## docs: build the documentation site into .site/ (strict: a warning or a broken link fails)
docs: $(DEV)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir .site

## test-deep: every property test with the deep hypothesis profile (random, 20x the examples)
test-deep: $(DEV)
	HYPOTHESIS_PROFILE=deep $(BIN)/pytest -q -m hypothesis

## bench: decision latency and HTTP throughput (quick, ~2 min); bench-full: the full sizes
bench: $(DEV) wrk
	$(BIN)/python -m benchmarks

bench-full: $(DEV) wrk
	$(BIN)/python -m benchmarks --full

## bench-mcp: COAZ mapping latency and the gateway's added latency per tools/call
bench-mcp: $(DEV)
	$(BIN)/python -m benchmarks.bench_coaz_mapping
	$(BIN)/python -m benchmarks.bench_gateway
	$(BIN)/python -m benchmarks.bench_gateway --sse

## bench-store: resource search over 10k/100k stored records; decision-log cost on throughput and CPU
bench-store: $(DEV) wrk
	$(BIN)/python -m benchmarks.bench_search
	$(BIN)/python -m benchmarks.bench_decision_log
	$(BIN)/python -m benchmarks.bench_decision_log_cpu

## bench-auth: what PEP authentication (API key, JWT) and the rate limiter cost per request
bench-auth: $(DEV)
	$(BIN)/python -m benchmarks.bench_pep_auth

# wrk (Debian's package) drives the HTTP runs; installed when missing and we may, else skipped.
wrk:
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq \
	  && apt-get install -y -qq wrk >/dev/null; } \
	  || echo "wrk is not installed (apt-get install wrk): the HTTP runs will be skipped"

## compare: this PDP beside Cerbos on the Todo scenario (needs ../shared)
compare: $(DEV)
	PDP_BIN=$(BIN)/pdp ../shared/peers/cerbos/compare.sh

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .pdp .site .artifacts build dist
