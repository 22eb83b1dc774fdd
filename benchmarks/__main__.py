"""``python -m benchmarks [--full]``: decision latency in process, HTTP throughput under wrk,
latency during a reload; a table on stdout, JSON and a PNG plot in ``benchmarks/results/``.

Quick (the default, about two minutes): 10 / 1,000 / 10,000 policies over 10,000 entities,
10 and 10,000 entities under 1,000 policies, HTTP runs of 4 s. ``--full`` adds 100,000
policies and 1,000,000 entities and runs longer. ``--no-http`` skips the wrk runs (they need
``wrk`` and ``taskset``, and two CPUs). Figures are measurements, not assertions: nothing
here fails when a target is missed; the table says which are met.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import report
from benchmarks.engine_latency import run_engine
from benchmarks.http_load import have_wrk, run_http

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--full", action="store_true", help="the full sizes (slow)")
    parser.add_argument("--no-http", action="store_true", help="skip the wrk runs")
    parser.add_argument("--no-engine", action="store_true", help="skip in-process latency")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    args = parser.parse_args(argv)

    def log(message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    full = args.full
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(0, {1})  # in-process runs on CPU 1; the HTTP server gets CPU 0
    results: dict[str, Any] = {
        "mode": "full" if full else "quick",
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "platform": platform.platform()},
    }
    if not args.no_engine:
        results["engine"] = run_engine(
            [10, 1_000, 10_000, 100_000] if full else [10, 1_000, 10_000],
            [10, 10_000, 1_000_000] if full else [10, 10_000],
            fixed_entities=10_000, fixed_policies=1_000,
            budget_s=4.0 if full else 1.0, max_samples=20_000 if full else 3_000, log=log)
    if not args.no_http:
        if have_wrk() and (os.cpu_count() or 1) >= 2:
            results["http"] = run_http(policies=1_000, entities=10_000,
                                       reload_policies=10_000,
                                       duration_s=10.0 if full else 3.0, log=log)
        else:
            results["http"] = {"skipped": "needs wrk, taskset and two CPUs"}
    results["targets"] = report.targets(results)

    args.out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    json_path = args.out / f"bench-{results['mode']}-{stamp}.json"
    json_path.write_text(json.dumps(results, indent=2))
    (args.out / f"latest-{results['mode']}.json").write_text(json.dumps(results, indent=2))
    print(report.table(results))
    plot = report.plot(results, args.out / f"bench-{results['mode']}-{stamp}.png")
    print(f"\nresults: {json_path}" + (f"\nplot:    {plot}" if plot else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
