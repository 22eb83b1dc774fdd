"""The decision cache on its own and in the engine: what a hit, a miss and a store cost, and
how many decisions a budget holds.

* ``get-hit`` / ``get-miss`` / ``put``: :class:`pdp.engine.cache.DecisionCache` operations on
  keys already encoded, timed in batches of 1,000 (nanoseconds per operation, the median of
  the batches);
* ``key``: the canonical encoding of a request (what every cached decision pays first);
* ``engine-hit``: :meth:`pdp.engine.Engine.decide` on the Todo set with the cache on and the
  requests repeating (every call a hit), p50 per call;
* ``held``: the decisions a 4 MiB budget holds when filled with varied requests.

    python -m benchmarks.bench_decision_cache [--budget SECONDS] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.engine_latency import cycle, interleaved
from pdp.authzen.model import Action, Decision, Entity, EvaluationRequest
from pdp.engine import Engine, EngineOptions
from pdp.engine.cache import DecisionCache
from pdp.entities import InMemoryEntityStore, StoredEntity
from pdp.policies.compiled import compile_directory
from pdp.policies.holder import PolicyHolder

TODO = Path(__file__).resolve().parent.parent / "policies" / "todo"
_BATCH = 1000


def _request(i: int) -> EvaluationRequest:
    return EvaluationRequest(
        Entity("user", f"user-{i}", {"department": "Sales", "level": i % 9}), Action("read"),
        Entity("document", f"doc-{i * 7}"),
        {"ip": f"10.{i % 250}.{i % 200}.7", "time": f"2026-01-01T{i % 24:02d}:00:00Z"})


def _batched(operation: Callable[[int], object], budget_s: float) -> float:
    """Nanoseconds per operation: the median over batches of ``_BATCH`` calls."""
    per_op: list[float] = []
    deadline = time.perf_counter() + budget_s
    while len(per_op) < 5 or time.perf_counter() < deadline:
        started = time.perf_counter_ns()
        for i in range(_BATCH):
            operation(i)
        per_op.append((time.perf_counter_ns() - started) / _BATCH)
    return statistics.median(per_op)


def cache_operations(budget_s: float) -> dict[str, float]:
    cache = DecisionCache(64 * 1024 * 1024)
    generation = ("v1", 1)
    requests = [_request(i) for i in range(_BATCH)]
    keys = [cache.key(r) for r in requests]
    assert all(k is not None for k in keys)
    present = [k for k in keys if k is not None]
    absent = [k + b" " for k in present]
    decision = Decision(True, "permit", ("policy-1",))
    for key in present:
        cache.put(generation, key, decision)
    figures = {
        "get-hit": _batched(lambda i: cache.get(generation, present[i]), budget_s),
        "get-miss": _batched(lambda i: cache.get(generation, absent[i]), budget_s),
        "put": _batched(lambda i: cache.put(generation, present[i], decision), budget_s),
        "key": _batched(lambda i: cache.key(requests[i]), budget_s),
    }
    return figures


def held_in(budget: int) -> int:
    cache = DecisionCache(budget)
    for i in range(40_000):
        key = cache.key(_request(i))
        assert key is not None
        cache.put(("v1", 1), key, Decision(i % 3 != 0, "permit", (f"policy-{i % 11}",)))
    return len(cache)


def engine_hits(budget_s: float) -> dict[str, Any]:
    compiled = compile_directory(TODO)
    raw = json.loads((TODO / "entities.json").read_text())
    store = InMemoryEntityStore(StoredEntity.from_cedar_json(e) for e in raw)
    engine = Engine(PolicyHolder(compiled), store,
                    EngineOptions(decision_cache_bytes=16 * 1024 * 1024))
    users = [e["uid"]["id"] for e in raw if e["uid"]["type"] == "user"][:8]
    asked = [EvaluationRequest(Entity("user", u), Action(a), Entity("todo", "1"))
             for u in users for a in ("can_read_todos", "can_create_todo")]
    for request in asked:
        engine.decide([request])
    calls: list[tuple[str, Callable[[], object], str]] = []
    pool = cycle(asked)
    calls.append(("engine-hit", lambda: engine.decide([pool()]), "cache hits"))
    cell = interleaved(calls, len(compiled.policies), len(raw), budget_s, 200_000)[0]
    return {"p50_us": cell.p50_us, "p99_us": cell.p99_us, "samples": cell.samples,
            "hits": engine.cache.hits if engine.cache else 0}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_decision_cache",
                                     description=__doc__)
    parser.add_argument("--budget", type=float, default=2.0, help="seconds per figure")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    out: dict[str, Any] = {f"{name}_ns": round(ns, 1)
                           for name, ns in cache_operations(args.budget).items()}
    out["held_in_4MiB"] = held_in(4 * 1024 * 1024)
    out["engine_hit"] = engine_hits(args.budget)
    for name, value in out.items():
        print(f"{name:>14}: {value}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
