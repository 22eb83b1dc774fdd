"""What the decision log costs the serving thread, per decision, and what it costs elsewhere.

The decision log is called on the thread that serves the request (``DecisionLog.evaluation``
and ``DecisionLog.evaluations``, as ``PDPService`` calls them). This measures, in one run:

* ``serving_us``: CPU time of the calling thread per decision (``time.thread_time``, less the
  benchmark loop's own cost), single evaluations and batches of 10, for each personal-data
  mode. Target: at most 3 µs.
* ``background_us``: CPU time spent by the rest of the process (the log's own threads) per
  decision until everything is in the SQL log, as the process's CPU minus the serving
  thread's. On a machine without a spare core that time is taken from the server.

The decisions are paced in bursts (``--burst`` decisions, then a short pause) so the log's
threads run beside the serving thread as they do under load, not only after it.

    python -m benchmarks.bench_decision_log_cpu [--decisions N] [--burst N] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

try:
    import pdp  # noqa: F401
except ModuleNotFoundError:  # run from a checkout without installing the package
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pdp.authzen import Action, Decision, Entity, EvaluationRequest
from pdp.decision_log import DecisionLog
from pdp.settings import Settings

TARGET_US = 3.0


def request(i: int) -> EvaluationRequest:
    """A Todo-like evaluation: properties on the subject, a small context."""
    return EvaluationRequest(
        Entity("user", f"user-{i % 50}", {"roles": ["user", "admin"] if i % 7 == 0 else ["user"],
                                          "email": f"user{i % 50}@example.com"}),
        Action("read"),
        Entity("todo", str(i % 1000), {"ownerID": f"user-{i % 37}"}),
        {"ip": f"10.0.{i % 200}.{i % 250}", "time": "2026-12-06T02:00:00Z"})


DECISION = Decision(True, "permit", ("todos-owner-may-read",))


def run(mode: str, batch: int, decisions: int, burst: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), decision_log_personal_data=mode)  # type: ignore[arg-type]
        log = DecisionLog.from_settings(settings)
        assert log is not None
        log.start()
        requests = [request(i) for i in range(1000)]
        groups = [requests[i:i + batch] for i in range(0, len(requests), batch)]
        decided = [DECISION] * batch
        # warm up (schema, files, caches)
        for i in range(200):
            log.evaluation(f"warm-{i}", requests[i], DECISION, "v1", 0.0001)
        assert log.flush(60)
        # the loop's own cost (ids, indexing), measured without the log and subtracted
        started = time.thread_time()
        for n in range(decisions // batch):
            _ = (f"req-{n}", requests[n % 1000], groups[n % len(groups)])
        loop = time.thread_time() - started
        process_before, serving = time.process_time(), 0.0
        done = 0
        n = 0
        while done < decisions:
            started = time.thread_time()
            for _ in range(burst // batch or 1):
                if batch == 1:
                    log.evaluation(f"req-{n}", requests[n % 1000], DECISION, "v1", 0.0001)
                else:
                    log.evaluations(f"req-{n}", groups[n % len(groups)], decided, "v1", 0.0003)
                n += 1
                done += batch
            serving += time.thread_time() - started
            time.sleep(0.002)  # the gap between bursts: where the log's threads catch up
        assert log.flush(120), "the log did not catch up"
        process = time.process_time() - process_before
        log.close()
    return {"mode": mode, "batch": batch, "decisions": done,
            "serving_us": max(0.0, serving - loop) / done * 1e6,
            "background_us": max(0.0, process - serving) / done * 1e6}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=50_000)
    parser.add_argument("--burst", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    results = []
    for mode in ("hashed", "full", "omitted"):
        for batch in (1, 10):
            rounds = [run(mode, batch, args.decisions, args.burst) for _ in range(args.rounds)]
            best = {"mode": mode, "batch": batch, "decisions": rounds[0]["decisions"],
                    "serving_us": statistics.median(r["serving_us"] for r in rounds),
                    "background_us": statistics.median(r["background_us"] for r in rounds)}
            results.append(best)
            print(f"{mode:8} batch {batch:2}: serving thread {best['serving_us']:6.2f} µs/decision "
                  f"(target <= {TARGET_US}), log's threads {best['background_us']:6.2f} "
                  f"µs/decision", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"python": platform.python_version(),
                                         "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
