"""``/access/v1/evaluation`` ÷ the no-op endpoint, measured in alternating rounds.

``python -m benchmarks`` takes three alternating rounds and divides the median requests/s
of one side by the other's; on a shared machine whose speed moves by a quarter within
seconds, the two medians can come from different rounds. Here one server (pinned to CPU 0,
decision log and cache off, as the quick benchmark runs it) answers ``wrk`` (CPU 1) on the
two endpoints in turn, ``--rounds`` times ``--seconds`` each, and the figure is the median
of the per-round ratios (each round's ratio is printed too).

    python -m benchmarks.noop_ratio [--set todo|1k|both] [--rounds 7] [--seconds 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from benchmarks.http_load import ROOT, _bodies, have_wrk, server, todo_bodies, wrk
from benchmarks.workload import Population, requests, wire, write_policy_set

GOAL = 0.5


def rounds(base: str, bodies: Path, count: int, seconds: float) -> list[float]:
    """Each round's evaluation ÷ no-op requests/s, printed as it is measured."""
    env = {"BODIES": str(bodies)}
    ratios = []
    for r in range(count):
        warmup = 1.0 if r == 0 else 0.0
        noop = wrk("noop", base + "/bench/noop", script="rotate.lua", env=env,
                   duration_s=seconds, warmup_s=warmup)
        evaluation = wrk("evaluation", base + "/access/v1/evaluation", script="rotate.lua",
                         env=env, duration_s=seconds, warmup_s=warmup)
        failed = noop.non_2xx + noop.errors + evaluation.non_2xx + evaluation.errors
        if failed:  # a ratio of refusals measures nothing
            raise SystemExit(f"round {r + 1}: {failed} requests failed; see the server log")
        ratios.append(evaluation.requests_per_s / noop.requests_per_s)
        print(f"  round {r + 1}: no-op {noop.requests_per_s:8,.0f}  evaluation "
              f"{evaluation.requests_per_s:8,.0f} req/s  ratio {ratios[-1]:.3f}", flush=True)
    return ratios


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=["todo", "1k", "both"], default="both")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args(argv)
    if not have_wrk():
        print("wrk and taskset are needed", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="pdp-noop-ratio-") as name:
        tmp = Path(name)
        sets: list[tuple[str, Path, Path]] = []
        if args.set in ("todo", "both"):
            sets.append(("the Todo set", ROOT / "policies" / "todo",
                         _bodies(tmp / "todo.jsonl", todo_bodies())))
        if args.set in ("1k", "both"):
            population = Population.of(10_000)
            policies = write_policy_set(tmp / "set", 1000, population)
            pool = [wire(r) for r in requests(population, 2000, seed=5)]
            sets.append(("1,000 policies over 10,000 entities", policies,
                         _bodies(tmp / "bodies.jsonl", pool)))
        for title, policies, bodies in sets:
            print(f"{title}: evaluation ÷ no-op, {args.rounds} rounds of {args.seconds:g} s",
                  flush=True)
            with server(policies, tmp) as base:
                ratios = rounds(base, bodies, args.rounds, args.seconds)
            median = statistics.median(ratios)
            print(f"  median {median:.3f} (rounds {min(ratios):.3f}-{max(ratios):.3f}), goal "
                  f"{GOAL}: {'met' if median >= GOAL else 'NOT met'}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
