"""Cost of reading a request body: the shared reader (:func:`pdp.authzen.parse_json_body`,
which refuses duplicate keys) against the bare ``orjson.loads`` it is built on.

For each body (a Todo evaluation, the same with escapes in a string, a 100-item batch, a
COAZ-sized request) reports the median per call in microseconds of both, and their ratio,
measured in one run, interleaved.

    python -m benchmarks.bench_body_parse [--iterations N]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

try:
    import pdp  # noqa: F401
except ModuleNotFoundError:  # run from a checkout without installing the package
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import orjson

from pdp.authzen import parse_json_body

EVALUATION = orjson.dumps({
    "subject": {"type": "user",
                "id": "CiRmZDA2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs"},
    "action": {"name": "can_read_todos"},
    "resource": {"type": "todo", "id": "1"},
    "context": {"time": "2026-01-01T12:00:00Z", "ip": "10.0.0.1"}})
ESCAPED = orjson.dumps({
    "subject": {"type": "user", "id": "bob", "properties": {"name": "Bob \"the\" builder"}},
    "action": {"name": "view"}, "resource": {"type": "document", "id": "roadmap"}})
BATCH = orjson.dumps({
    "subject": {"type": "user", "id": "bob"}, "action": {"name": "view"},
    "evaluations": [{"resource": {"type": "document", "id": f"doc-{i}",
                                  "properties": {"owner": "alice", "level": i}}}
                     for i in range(100)]})
COAZ = orjson.dumps({"message": {
    "jsonrpc": "2.0", "id": 7, "method": "tools/call",
    "params": {"name": "get_customer", "arguments": {"id": "c-1", "case": "x" * 200}}},
    "tool": {"name": "get_customer", "inputSchema": {"type": "object", "properties": {
        "id": {"type": "string"}, "case": {"type": "string"}}}}})
BODIES = {"evaluation": EVALUATION, "escaped": ESCAPED, "batch of 100": BATCH,
          "coaz": COAZ}


def _median_us(fn: Callable[[], Any], iterations: int) -> float:
    samples: list[float] = []
    for _ in range(7):
        start = time.perf_counter_ns()
        for _ in range(iterations):
            fn()
        samples.append((time.perf_counter_ns() - start) / iterations / 1000)
    return statistics.median(samples)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=20_000)
    args = parser.parse_args(argv)
    gc.disable()
    print(f"{'body':<14}{'bytes':>7}{'orjson.loads':>15}{'shared reader':>15}{'ratio':>8}")
    for name, body in BODIES.items():
        iterations = max(args.iterations // (50 if len(body) > 4000 else 1), 200)
        bare = _median_us(lambda b=body: orjson.loads(b), iterations)  # type: ignore[misc]
        shared = _median_us(lambda b=body: parse_json_body(  # type: ignore[misc]
            "application/json", b, max_bytes=1 << 20, max_depth=32), iterations)
        print(f"{name:<14}{len(body):>7}{bare:>13.2f}us{shared:>13.2f}us{shared / bare:>8.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
