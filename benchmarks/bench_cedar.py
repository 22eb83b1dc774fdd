"""The native Cedar evaluator (``pdp.cedar``) against cedarpy on the same requests.

Part 1, the Todo set (``policies/todo``): every user × every action × three todos (owned by
Rick, by Morty, by nobody). Four ways to decide each request, timed in interleaved turns so
that they share the machine's weather:

* ``cedarpy``: ``cedarpy.is_authorized`` with a pre-parsed ``PolicySet`` and ``Entities``;
* ``cedarpy-raw``: cedarpy's extension entry point with the context already JSON text (what
  the engine calls today: the least cedarpy can cost);
* ``native``: ``pdp.cedar.is_authorized`` with a built ``PolicySet`` and ``EntitySet`` (the
  library API: the request's JSON values are decoded per call);
* ``native-eval``: ``PolicySet.evaluate`` on an already decoded request (what a caller holding
  native values, such as the engine, pays).

Part 3 (run last), the engine: ``Engine.decide`` on the Todo scenario's AuthZEN requests
(the todo's owner as a request property; a user as the resource of ``can_read_user``),
decision cache off, with ``evaluator="native"`` and with ``evaluator="cedarpy"``.

Part 2, scale: the generated document-sharing workload (``benchmarks.workload``) with 10 and
with 10,000 policies over 1,000 entities, ``native-eval`` p50 at each beside cedarpy-raw; the
ratio of the two native p50s is measured with the two sets in interleaved turns of their own
(``native-eval@10`` and ``native-eval@10000``), so that both see the same machine rather than
each its own run beside a different cedarpy.

    python -m benchmarks.bench_cedar [--budget SECONDS] [--json OUT]

Targets: native ÷ cedarpy-raw ≤ 0.25 at p50; 10,000 policies ÷ 10 policies ≤ 1.5; the
engine on the Todo set ≤ 10 µs a decision.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cedarpy
import orjson

import pdp.cedar
from benchmarks.engine_latency import Cell, cycle, interleaved
from benchmarks.workload import Population, entities, policies, requests
from pdp.authzen.model import Action, Entity, EvaluationRequest
from pdp.cedar import native_request
from pdp.engine import Engine, EngineOptions
from pdp.entities import InMemoryEntityStore, StoredEntity
from pdp.policies.compiled import compile_directory
from pdp.policies.holder import PolicyHolder

ROOT = Path(__file__).resolve().parent.parent
TODO = ROOT / "policies" / "todo"
ACTIONS = ("can_read_user", "can_read_todos", "can_create_todo", "can_update_todo",
           "can_delete_todo")

try:
    from cedarpy import _internal as _ext
except ImportError:  # pragma: no cover
    _ext = None


def todo_workload() -> tuple[pdp.cedar.PolicySet, pdp.cedar.EntitySet, list[dict[str, Any]]]:
    users = json.loads((TODO / "entities.json").read_text())
    emails = [u["attrs"].get("email") for u in users if u["uid"]["type"] == "user"]
    todos = [{"uid": {"type": "todo", "id": f"t{i}"},
              "attrs": {"ownerID": owner} if owner else {}, "parents": []}
             for i, owner in enumerate([emails[0], emails[1], None])]
    ps = pdp.cedar.PolicySet((TODO / "todo.cedar").read_text())
    es = pdp.cedar.EntitySet(users + todos)
    reqs = [{"principal": u["uid"], "action": {"type": "Action", "id": a},
             "resource": t["uid"], "context": {}}
            for u in users if u["uid"]["type"] == "user" for a in ACTIONS for t in todos]
    return ps, es, reqs


def _agree(ps: pdp.cedar.PolicySet, es: pdp.cedar.EntitySet,
           reqs: list[dict[str, Any]]) -> int:
    """How many requests the two evaluators answer differently (expected: 0)."""
    bad = 0
    for r in reqs:
        ours = pdp.cedar.is_authorized(r, ps, es)
        theirs = cedarpy.is_authorized(r, ps.cedar, es.cedar)
        bad += (ours["decision"] == "allow") != theirs.allowed or sorted(
            ours["reasons"]) != sorted(theirs.diagnostics.reasons)
    return bad


def methods(ps: pdp.cedar.PolicySet, es: pdp.cedar.EntitySet, reqs: list[dict[str, Any]],
            which: tuple[str, ...]) -> list[tuple[str, Any, str]]:
    calls: list[tuple[str, Any, str]] = []
    nxt = cycle(reqs)
    if "cedarpy" in which:
        calls.append(("cedarpy", lambda: cedarpy.is_authorized(nxt(), ps.cedar, es.cedar), ""))
    if "cedarpy-raw" in which and _ext is not None:
        raw = [dict(r, context=orjson.dumps(r["context"]).decode()) for r in reqs]
        raw_next, inner = cycle(raw), es.cedar._inner
        calls.append(("cedarpy-raw", lambda: orjson.loads(
            _ext.is_authorized(raw_next(), ps.cedar, inner, None, False)), ""))
    if "native" in which:
        calls.append(("native", lambda: pdp.cedar.is_authorized(nxt(), ps, es), ""))
    if "native-eval" in which:
        decoded = cycle([native_request(r) for r in reqs])
        store = es.store
        calls.append(("native-eval", lambda: ps.evaluate(*decoded(), store), ""))
    return calls


def _decider(engine: Engine, nxt: Callable[[], EvaluationRequest]) -> Callable[[], object]:
    return lambda: engine.decide([nxt()])


def engine_methods() -> list[tuple[str, Any, str]]:
    compiled = compile_directory(TODO)
    users = json.loads((TODO / "entities.json").read_text())
    emails = [u["attrs"]["email"] for u in users]
    asked = [EvaluationRequest(Entity("user", u["uid"]["id"]), Action(a),
                               Entity("user", owner) if a == "can_read_user"
                               else Entity("todo", "1", {"ownerID": owner}))
             for u in users for a in ACTIONS for owner in (emails[0], emails[1])]
    assert not any(d.outcome == "invalid" for d in Engine(
        PolicyHolder(compiled), InMemoryEntityStore(StoredEntity.from_cedar_json(e)
                                                    for e in users)).decide(asked))
    calls: list[tuple[str, Any, str]] = []
    for evaluator in ("native", "cedarpy"):
        store = InMemoryEntityStore(StoredEntity.from_cedar_json(e) for e in users)
        engine = Engine(PolicyHolder(compiled), store, EngineOptions(evaluator=evaluator))
        calls.append((f"engine-{evaluator}", _decider(engine, cycle(asked)), "cache off"))
    return calls


def run(budget: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    ps, es, reqs = todo_workload()
    assert ps.native_reason is None and es.native_reason is None
    out["todo_mismatches"] = _agree(ps, es, reqs)
    cells = interleaved(methods(ps, es, reqs, ("cedarpy", "cedarpy-raw", "native",
                                               "native-eval")),
                        len(ps), len(es), budget, 200_000)
    out["todo"] = [c.__dict__ for c in cells]
    p50 = {c.method: c.p50_us for c in cells}
    out["ratios"] = {f"{n} / {b}": round(p50[n] / p50[b], 3)
                     for n in ("native", "native-eval") for b in ("cedarpy", "cedarpy-raw")
                     if n in p50 and b in p50}
    population = Population.of(1_000)
    ents = list(entities(population))
    es2 = pdp.cedar.EntitySet(ents)
    wire = [{"principal": {"type": "User", "id": r.subject.id},
             "action": {"type": "Action", "id": r.action.name},
             "resource": {"type": "Doc", "id": r.resource.id},
             "context": dict(r.context or {})} for r in requests(population, 2_000)]
    scale: list[Cell] = []
    paired: list[tuple[str, Any, str]] = []
    for count in (10, 10_000):
        ps2 = pdp.cedar.PolicySet(policies(count, population))
        assert ps2.native_reason is None
        out[f"mismatches_{count}"] = _agree(ps2, es2, wire[:200])
        scale += interleaved(methods(ps2, es2, wire, ("native-eval", "cedarpy-raw")),
                             count, len(es2), budget, 200_000)
        paired += [(f"{name}@{count}", call, note)
                   for name, call, note in methods(ps2, es2, wire, ("native-eval",))]
    scale += interleaved(paired, 0, len(es2), budget, 200_000)
    out["scale"] = [c.__dict__ for c in scale]
    engine_cells = interleaved(engine_methods(), len(ps), len(es), budget, 200_000)
    out["engine"] = [c.__dict__ for c in engine_cells]
    by_engine = {c.method: c.p50_us for c in engine_cells}
    out["ratios"]["engine native / engine cedarpy"] = round(
        by_engine["engine-native"] / by_engine["engine-cedarpy"], 3)
    by = {(c.method, c.policies): c.p50_us for c in scale}
    out["ratios"]["native-eval 10000 / 10 policies"] = round(
        by[("native-eval@10000", 0)] / by[("native-eval@10", 0)], 3)
    if ("cedarpy-raw", 10_000) in by:
        out["ratios"]["native-eval / cedarpy-raw at 10000 policies"] = round(
            by[("native-eval", 10_000)] / by[("cedarpy-raw", 10_000)], 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budget", type=float, default=3.0, help="seconds per method and cell")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    out = run(args.budget)
    for section in ("todo", "scale", "engine"):
        for c in out[section]:
            print(f"{section:5} {c['method']:17} policies={c['policies']:>6} "
                  f"p50={c['p50_us']:8.2f} µs p99={c['p99_us']:8.2f} µs n={c['samples']}")
    print("mismatches:", {k: v for k, v in out.items() if "mismatch" in k})
    for k, v in out["ratios"].items():
        print(f"{k}: {v}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
