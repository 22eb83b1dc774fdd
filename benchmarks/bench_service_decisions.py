"""Per-decision cost inside the service, from a parsed body to the wire answer.

Times ``PDPService.evaluation`` (each Todo evaluation body, parsed per call) and
``PDPService.evaluations`` (a 10-item Todo batch) with the decision log and the decision
cache off, and prints the median microseconds per decision.

    python -m benchmarks.bench_service_decisions [--iterations N]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from pdp.authzen.evaluation import parse_evaluation
from pdp.service import PDPService
from pdp.settings import Settings, shipped_policies_dir

_BODIES = [orjson.loads(line) for line in (
    '{"subject":{"type":"user","id":"CiRmZDA2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs"},'
    '"action":{"name":"can_read_todos"},"resource":{"type":"todo","id":"todo-1"}}',
    '{"subject":{"type":"user","id":"CiRmZDA2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs"},'
    '"action":{"name":"can_read_user"},"resource":{"type":"user","id":"beth@the-smiths.com"}}',
)]
_BATCH: dict[str, Any] = {"subject": _BODIES[0]["subject"], "evaluations": [
    {"action": b["action"], "resource": b["resource"]} for b in _BODIES * 5]}


def _median_us(fn: Any, iterations: int, per_call: int) -> float:
    samples: list[float] = []
    for _ in range(7):
        start = time.perf_counter_ns()
        for _ in range(iterations):
            fn()
        samples.append((time.perf_counter_ns() - start) / iterations / per_call / 1000)
    return statistics.median(samples)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=5_000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as data:
        settings = Settings(policies=shipped_policies_dir() / "todo", entity_store="memory",
                            decision_log="off", decision_cache="off", data_dir=Path(data))
        service = PDPService.from_settings(settings)
        gc.disable()
        single = _median_us(lambda: [service.evaluation(parse_evaluation(b)) for b in _BODIES],
                            args.iterations, len(_BODIES))
        batch = _median_us(lambda: service.evaluations(_BATCH), args.iterations // 5,
                           len(_BATCH["evaluations"]))
        print(f"evaluation  {single:8.2f} us/decision")
        print(f"evaluations {batch:8.2f} us/decision (10-item batch)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
