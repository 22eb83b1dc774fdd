"""In-process decision latency: plain cedarpy against this engine, by policy and entity count.

Four ways to decide the same requests (from :mod:`benchmarks.workload`):

(a) ``cedarpy.is_authorized`` with the policy *text*: Cedar parses the whole set per call;
(b) ``cedarpy.is_authorized`` with a pre-parsed ``PolicySet`` of the whole set: Cedar still
    evaluates every policy's scope per call;
(c) :meth:`pdp.engine.Engine.decide` without the decision cache: AuthZEN translation, entity
    slice, policy slice, Cedar;
(d) the same with the decision cache, the requests repeating (cache hits).

(a) and (b) get the Cedar request already built and exactly the entities the engine gives
Cedar for that request (as JSON), so they measure what plain cedarpy costs with the same PIP
lookups done for free. A cell is skipped when its first call takes more than a second.

(c) is measured twice: "warm" after one pass over the request pool (the engine's memo of
policy slices holds them, the steady state of a service with recurring traffic) and "cold"
on requests it has not seen (every request may need a policy slice built), by an engine of
its own: the runs take turns, and the unseen requests would otherwise push the recurring
ones' plans out of the warm engine's memo.
"""

from __future__ import annotations

import gc
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cedarpy

from benchmarks.workload import Population, entities, requests, write_policy_set
from pdp.authzen.model import EvaluationRequest
from pdp.engine import Engine, EngineOptions
from pdp.entities import InMemoryEntityStore, StoredEntity
from pdp.policies.compiled import compile_directory
from pdp.policies.holder import PolicyHolder

SKIP_ABOVE_S = 1.0


@dataclass
class Cell:
    """Latency of one method on one configuration, in microseconds."""

    method: str
    policies: int
    entities: int
    samples: int = 0
    p50_us: float | None = None
    p99_us: float | None = None
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


@dataclass
class Setup:
    policies: int
    entities: int
    compile_s: float
    store_s: float
    engine: Engine
    cached: Engine
    text: str
    pool: list[EvaluationRequest]
    fresh: list[EvaluationRequest]
    extra: dict[str, Any] = field(default_factory=dict)
    cedarpy: Engine | None = None  # the same engine deciding with PDP_EVALUATOR=cedarpy
    # an engine of its own for the unseen requests: they would otherwise push the recurring
    # requests' plans out of (c)'s memo, and (c) would no longer measure recurring traffic
    cold: Engine | None = None


def build(policy_count: int, entity_count: int, pool: int, workdir: Path,
          policy_ids_from: int | None = None) -> Setup:
    """A policy set and a store. The policies name entities of a population of
    ``policy_ids_from`` entities (default: the store's), so that the store's size can vary
    while the policies stay the same."""
    population = Population.of(entity_count)
    directory = write_policy_set(workdir / f"p{policy_count}-e{entity_count}", policy_count,
                                 Population.of(policy_ids_from or entity_count),
                                 with_entities=False)
    started = time.perf_counter()
    compiled = compile_directory(directory)
    compile_s = time.perf_counter() - started
    started = time.perf_counter()
    store = InMemoryEntityStore(StoredEntity.from_cedar_json(e) for e in entities(population))
    store_s = time.perf_counter() - started
    holder = PolicyHolder(compiled)
    engine = Engine(holder, store, EngineOptions())
    cached = Engine(holder, store, EngineOptions(decision_cache_bytes=64 * 1024 * 1024))
    setup = Setup(policy_count, entity_count, compile_s, store_s, engine, cached,
                  (directory / "policies.cedar").read_text(),
                  requests(population, pool, seed=3), requests(population, 20_000, seed=4))
    setup.cedarpy = Engine(holder, store, EngineOptions(evaluator="cedarpy"))
    setup.cold = Engine(holder, store, EngineOptions())
    return setup


def timed(call: Callable[[], object], budget_s: float, max_samples: int,
          min_samples: int = 5) -> list[int]:
    """Nanoseconds per call, until the budget or the sample cap is reached."""
    samples: list[int] = []
    deadline = time.perf_counter() + budget_s
    clock = time.perf_counter_ns
    while len(samples) < max_samples and (len(samples) < min_samples
                                          or time.perf_counter() < deadline):
        started = clock()
        call()
        samples.append(clock() - started)
    return samples


def interleaved(calls: Sequence[tuple[str, Callable[[], object], str]], policies: int,
                entities: int, budget_s: float, max_samples: int) -> list[Cell]:
    """Time each call in turns of about 5 ms, so that every method sees the same machine
    (other load comes and goes); each gets ``budget_s`` in all, or ``max_samples`` calls."""
    cells: dict[str, Cell] = {}
    samples: dict[str, list[int]] = {}
    turn: dict[str, int] = {}
    active: list[tuple[str, Callable[[], object]]] = []
    for method, call, note in calls:
        cells[method] = Cell(method, policies, entities, note=note)
        gc.collect()
        started = time.perf_counter()
        call()
        first = time.perf_counter() - started
        if first > SKIP_ABOVE_S:
            cells[method].note = f"skipped: one call takes {first:.1f} s"
            continue
        samples[method] = []
        turn[method] = max(1, min(200, int(0.005 / max(first, 1e-7))))
        active.append((method, call))
    spent = dict.fromkeys(samples, 0.0)
    clock = time.perf_counter_ns
    while active:
        for method, call in list(active):
            taken = samples[method]
            for _ in range(turn[method]):
                started = clock()
                call()
                elapsed = clock() - started
                taken.append(elapsed)
                spent[method] += elapsed / 1e9
            if len(taken) >= max_samples or (spent[method] >= budget_s and len(taken) >= 5):
                active.remove((method, call))
    for method, taken in samples.items():
        cells[method].samples = len(taken)
        cells[method].p50_us, cells[method].p99_us = percentiles(taken)
    return list(cells.values())


def percentiles(samples: Sequence[int]) -> tuple[float, float]:
    ordered = sorted(samples)
    p50 = statistics.median(ordered) / 1000
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] / 1000
    return p50, p99


def cycle(items: Sequence[Any]) -> Callable[[], Any]:
    state = {"i": -1}

    def next_item() -> Any:
        state["i"] = (state["i"] + 1) % len(items)
        return items[state["i"]]

    return next_item


def measure(setup: Setup, budget_s: float, max_samples: int,
            methods: Sequence[str] = ("a", "b", "c", "e", "c-cold", "d")) -> list[Cell]:
    cells: list[Cell] = []
    engine, cached = setup.engine, setup.cached
    inputs = [engine.cedar_input(r) for r in setup.pool]
    cedar_inputs = [(i.request, _json_entities(i.entities)) for i in inputs]
    full = engine.current().policy_set
    mismatches = 0
    for req, (cedar_request, ents) in zip(setup.pool[:200], cedar_inputs[:200], strict=False):
        plain = cedarpy.is_authorized(cedar_request, full, ents)
        ours = engine.decide([req])[0]
        if plain.allowed != ours.allowed or sorted(plain.diagnostics.reasons) != list(
                ours.reasons):
            mismatches += 1
    setup.extra["mismatches_b_vs_c"] = mismatches

    calls: list[tuple[str, Callable[[], object], str]] = []
    plain_next = cycle(cedar_inputs)
    if "a" in methods:
        text = setup.text
        calls.append(("a", lambda: cedarpy.is_authorized(*_with(plain_next(), text)), ""))
    if "b" in methods:
        calls.append(("b", lambda: cedarpy.is_authorized(*_with(plain_next(), full)), ""))
    if "c" in methods:
        for r in setup.pool:  # warm: the policy slices of the pool are built
            engine.decide([r])
        pool_next = cycle(setup.pool)
        calls.append(("c", lambda: engine.decide([pool_next()]), "warm policy slices"))
    other = setup.cedarpy
    if "e" in methods and other is not None:
        for r in setup.pool:
            other.decide([r])
        other_next = cycle(setup.pool)
        calls.append(("e", lambda: other.decide([other_next()]), "PDP_EVALUATOR=cedarpy"))
    if "c-cold" in methods:
        cold = setup.cold or engine
        fresh_next = cycle(setup.fresh)
        calls.append(("c-cold", lambda: cold.decide([fresh_next()]), "unseen requests"))
    if "d" in methods:
        hot = setup.pool[:256]
        for r in hot:
            cached.decide([r])
        hot_next = cycle(hot)
        calls.append(("d", lambda: cached.decide([hot_next()]), "cache hits"))
    cells.extend(interleaved(calls, setup.policies, setup.entities, budget_s, max_samples))
    return cells


def _with(item: tuple[dict[str, Any], str], policies: Any) -> tuple[Any, Any, str]:
    request, ents = item
    return request, policies, ents


def _json_entities(ents: list[dict[str, Any]]) -> str:
    import orjson

    return orjson.dumps(ents).decode()


def run_engine(policy_sizes: Sequence[int], entity_sizes: Sequence[int], *,
               fixed_entities: int, fixed_policies: int, budget_s: float,
               max_samples: int, log: Callable[[str], None]) -> dict[str, Any]:
    """Latency by policy count (entities fixed) and by entity count (policies fixed; they
    name entities of a ``fixed_entities`` population whatever the store holds)."""
    out: dict[str, Any] = {"by_policies": [], "by_entities": [], "setups": []}
    with tempfile.TemporaryDirectory(prefix="pdp-bench-") as tmp:
        for n in policy_sizes:
            log(f"engine: {n:,} policies, {fixed_entities:,} entities")
            setup = build(n, fixed_entities, 2000, Path(tmp))
            out["by_policies"].extend(c.to_dict() for c in measure(setup, budget_s,
                                                                   max_samples))
            out["setups"].append(_describe(setup))
            del setup
            gc.collect()
        for m in entity_sizes:
            log(f"engine: {fixed_policies:,} policies, {m:,} entities")
            setup = build(fixed_policies, m, 2000, Path(tmp), policy_ids_from=fixed_entities)
            out["by_entities"].extend(c.to_dict() for c in measure(
                setup, budget_s, max_samples, methods=("b", "c", "e", "c-cold", "d")))
            out["setups"].append(_describe(setup))
            del setup
            gc.collect()
    return out


def _describe(setup: Setup) -> dict[str, Any]:
    return {"policies": setup.policies, "entities": setup.entities,
            "compile_s": round(setup.compile_s, 3), "store_load_s": round(setup.store_s, 3),
            "slice_memo": setup.engine.current().index.memo_size(), **setup.extra}
