"""Latency of mapping one MCP ``tools/call`` to an AuthZEN request (docs/spec/coaz.md, both
dialects).

Each case calls :func:`pdp.coaz.map_message` on the spec's example call (argument validation
against ``inputSchema``, reference resolution, subject anchoring and shape checks included) and
reports the p50 and p99 of single calls in microseconds. Target: p50 <= 20 us.

    python benchmarks/bench_coaz_mapping.py [--iterations N] [--json OUT]
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
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

from pdp.coaz import Evaluate, MappingOptions, ToolCatalog, map_message

TARGET_P50_US = 20.0

GET_CUSTOMER = {
    "name": "get_customer",
    "coaz": True,
    "description": "Get customer details",
    "inputSchema": {
        "type": "object",
        "properties": {"id": {"type": "string"}, "case": {"type": "string"}},
        "required": ["id"],
        "x-coaz-mapping": {
            "subject": {"type": "user", "id": "$token['sub']"},
            "resource": {"type": "customer", "id": "$properties['id']"},
            "context": {"agent": "$token['client_id']", "case": "$properties['case']"},
        },
    },
}

COPY_OBJECT = {
    "name": "copy_object",
    "inputSchema": {
        "type": "object",
        "properties": {"source": {"type": "string"}, "destination": {"type": "string"}},
        "required": ["source", "destination"],
        "x-authzen-mapping": {
            "evaluations": {
                "subject": {"type": "identity", "id": "$token.sub"},
                "context": {"agent": "$token.?client_id"},
                "evaluations": [
                    {"action": {"name": "read"},
                     "resource": {"type": "storage_object", "id": "$params.arguments.source"}},
                    {"action": {"name": "write"},
                     "resource": {"type": "storage_object",
                                  "id": "$params.arguments.destination"}},
                ],
            }
        },
    },
}

TRANSFER_FUNDS = {
    "name": "transfer_funds",
    "inputSchema": {
        "type": "object",
        "properties": {"from_account": {"type": "string"}, "to_account": {"type": "string"},
                       "amount": {"type": "number"}},
        "required": ["from_account", "to_account", "amount"],
        "x-authzen-mapping": {
            "evaluation": {
                "action": {"name": "transfer"},
                "resource": {"type": "account", "id": "$params.arguments.from_account"},
                "context": {"agent": "$token.?client_id",
                            "risk": "$params.arguments.amount > 10000 ? 'high' : 'standard'"},
            }
        },
    },
}

CLAIMS = {"iss": "https://as.example.com", "aud": "https://mcp.example.com/mcp",
          "sub": "alice@example.com", "client_id": "agent-app-1", "scope": "crm:read files",
          "iat": 1_767_225_600, "exp": 1_767_229_200}


def message(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": name, "arguments": arguments}}


CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("get_customer", "sep", message("get_customer", {"id": "cust-12345", "case": "case-67890"})),
    ("copy_object", "binding", message("copy_object", {"source": "a/b.txt",
                                                       "destination": "c/d.txt"})),
    ("transfer_funds", "binding", message("transfer_funds", {"from_account": "acc-1",
                                                             "to_account": "acc-2",
                                                             "amount": 25_000})),
]


def measure(call: Callable[[], object], iterations: int) -> list[float]:
    for _ in range(min(2_000, iterations)):
        call()
    gc.collect()
    samples: list[float] = []
    clock = time.perf_counter_ns
    for _ in range(iterations):
        start = clock()
        call()
        samples.append((clock() - start) / 1_000)
    return samples


def percentile(sorted_samples: list[float], q: float) -> float:
    index = min(len(sorted_samples) - 1, max(0, round(q * (len(sorted_samples) - 1))))
    return sorted_samples[index]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--iterations", type=int, default=20_000)
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the results here")
    args = parser.parse_args(argv)

    catalog = ToolCatalog.from_tools_list([GET_CUSTOMER, COPY_OBJECT, TRANSFER_FUNDS])
    assert not catalog.problems, catalog.problems
    options = MappingOptions(server_resource="https://mcp.example.com/mcp")

    results = []
    for name, dialect, msg in CASES:
        outcome = map_message(msg, CLAIMS, catalog, options)
        assert isinstance(outcome, Evaluate) and outcome.dialect == dialect, outcome
        samples = sorted(measure(lambda m=msg: map_message(m, CLAIMS, catalog, options),
                                 args.iterations))
        results.append({
            "case": name, "dialect": dialect, "iterations": args.iterations,
            "p50_us": round(percentile(samples, 0.50), 2),
            "p99_us": round(percentile(samples, 0.99), 2),
            "mean_us": round(statistics.fmean(samples), 2),
        })

    print(f"{'case':<16}{'dialect':<10}{'p50 µs':>10}{'p99 µs':>10}{'mean µs':>10}")
    for r in results:
        print(f"{r['case']:<16}{r['dialect']:<10}{r['p50_us']:>10.2f}{r['p99_us']:>10.2f}"
              f"{r['mean_us']:>10.2f}")
    met = all(r["p50_us"] <= TARGET_P50_US for r in results)
    print(f"target p50 <= {TARGET_P50_US:.0f} µs: {'met' if met else 'NOT met'}")

    if args.json is not None:
        args.json.write_text(json.dumps({
            "benchmark": "coaz_mapping", "target_p50_us": TARGET_P50_US, "target_met": met,
            "python": platform.python_version(), "machine": platform.machine(),
            "results": results}, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
