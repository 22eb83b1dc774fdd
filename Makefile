# The same commands run here and in CI (.ci/run calls `make test`).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test test-deep lint typecheck policies pytest bench bench-full bench-mcp bench-store bench-auth wrk compare clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

## run: start the PDP on 127.0.0.1:8080 with the shipped policies (SQLite, policies/default)
run: $(STAMP)
	$(BIN)/pdp serve

## test: lint, type-check, the shipped policy sets' own checks and tests, the whole test suite
test: lint typecheck policies pytest

## lint: ruff, and the import contracts of .importlinter (layers, adapters, light packages)
lint: $(STAMP)
	$(BIN)/ruff check pdp tests benchmarks tools
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

## policies: what a policy author's CI runs, on every shipped policy set
policies: $(STAMP)
	$(BIN)/pdp fmt --check policies
	for d in policies/*/; do $(BIN)/pdp check --strict $$d && $(BIN)/pdp test $$d || exit 1; done

pytest: $(STAMP)
	$(BIN)/pytest -q

## test-deep: every property test with the deep hypothesis profile (random, 20x the examples)
test-deep: $(STAMP)
	HYPOTHESIS_PROFILE=deep $(BIN)/pytest -q -m hypothesis

## bench: decision latency and HTTP throughput (quick, ~2 min); bench-full: the full sizes
bench: $(STAMP) wrk
	$(BIN)/python -m benchmarks

bench-full: $(STAMP) wrk
	$(BIN)/python -m benchmarks --full

## bench-mcp: COAZ mapping latency and the gateway's added latency per tools/call
bench-mcp: $(STAMP)
	$(BIN)/python -m benchmarks.bench_coaz_mapping
	$(BIN)/python -m benchmarks.bench_gateway
	$(BIN)/python -m benchmarks.bench_gateway --sse

## bench-store: resource search over 10k/100k stored records; decision-log cost on throughput
bench-store: $(STAMP) wrk
	$(BIN)/python -m benchmarks.bench_search
	$(BIN)/python -m benchmarks.bench_decision_log

## bench-auth: what PEP authentication (API key, JWT) and the rate limiter cost per request
bench-auth: $(STAMP)
	$(BIN)/python -m benchmarks.bench_pep_auth

# wrk (Debian's package) drives the HTTP runs; installed when missing and we may, else skipped.
wrk:
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq \
	  && apt-get install -y -qq wrk >/dev/null; } \
	  || echo "wrk is not installed (apt-get install wrk): the HTTP runs will be skipped"

## compare: this PDP beside Cerbos on the Todo scenario (needs ../shared)
compare: $(STAMP)
	PDP_BIN=$(BIN)/pdp ../shared/peers/cerbos/compare.sh

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .pdp build dist
