"""Resource search over 10,000 and 100,000 stored resources (AuthZEN 1.0 section 8).

The PDP serves ``policies/search`` with the SQL entity store (SQLite in a temporary
directory) holding 1,000 users and N records, and the decision cache off (every candidate is
really decided). Two searches are timed end to end through ``PDPService.search``:

* ``sparse``: a user who may delete only their own records (about N/1,000 of them): the
  search walks and decides all N candidates. This is the worst case; target: p50 <= 1 s at
  100,000.
* ``dense``: a manager who may view every record: the first page (1,000 results) ends the
  search early.

The time of each search is split into Cedar (the evaluator call), the store (candidate pages
and entity lookups) and the rest (request translation, slicing, batching, search bookkeeping).

    python -m benchmarks.bench_search [--sizes 10000,100000] [--repeats N] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

try:
    import pdp  # noqa: F401
except ModuleNotFoundError:  # run from a checkout without installing the package
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pdp.engine.cedarpy_batch as cedarpy_batch
from pdp.entities import StoredEntity
from pdp.entities.model import EntityUid
from pdp.service import PDPService
from pdp.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
TARGET_S = 1.0
USERS = 1_000
DEPARTMENTS = [f"dept-{i}" for i in range(10)]


class Clock:
    """Accumulated seconds per component while a search runs."""

    def __init__(self) -> None:
        self.cedar = 0.0
        self.store = 0.0

    def reset(self) -> None:
        self.cedar = self.store = 0.0


class TimedStore:
    """The real store, with the time spent in it counted."""

    def __init__(self, inner: Any, clock: Clock) -> None:
        self._inner = inner
        self._clock = clock

    @property
    def version(self) -> int:
        started = time.perf_counter()
        try:
            return int(self._inner.version)
        finally:
            self._clock.store += time.perf_counter() - started

    def get_many(self, uids: Iterable[EntityUid]) -> Mapping[EntityUid, StoredEntity]:
        started = time.perf_counter()
        try:
            found: Mapping[EntityUid, StoredEntity] = self._inner.get_many(uids)
            return found
        finally:
            self._clock.store += time.perf_counter() - started

    def candidates(self, entity_type: str, *, after: str | None, limit: int) -> Sequence[str]:
        started = time.perf_counter()
        try:
            found: Sequence[str] = self._inner.candidates(entity_type, after=after, limit=limit)
            return found
        finally:
            self._clock.store += time.perf_counter() - started

    def types(self) -> Sequence[str]:
        return list(self._inner.types())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def timed_cedar(clock: Clock) -> Callable[[], None]:
    """Count the time spent in the engine's Cedar calls; returns the undo."""
    original = cedarpy_batch.authorize_batch  # type: ignore[attr-defined]

    def authorize_batch(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            clock.cedar += time.perf_counter() - started

    cedarpy_batch.authorize_batch = authorize_batch  # type: ignore[attr-defined]

    def undo() -> None:
        cedarpy_batch.authorize_batch = original  # type: ignore[attr-defined]

    return undo


def populate(service: PDPService, records: int, rng: random.Random) -> None:
    users = [StoredEntity.build("user", f"u{i:04d}", {
        "role": "manager" if i == 0 else "employee", "department": rng.choice(DEPARTMENTS)})
        for i in range(USERS)]
    docs = [StoredEntity.build("record", f"r{i:07d}", {
        "title": f"Record {i}", "department": rng.choice(DEPARTMENTS),
        "owner": {"__entity": {"type": "user", "id": f"u{rng.randrange(1, USERS):04d}"}}})
        for i in range(records)]
    put_many = getattr(service.store, "put_many")  # noqa: B009 - the SQL store's write API
    put_many(users + docs)


def run_size(records: int, repeats: int, workdir: Path) -> list[dict[str, Any]]:
    settings = Settings(policies=ROOT / "policies" / "search", data_dir=workdir / str(records),
                        decision_cache="off", decision_log="off", watch=False)
    service = PDPService.from_settings(settings)
    try:
        started = time.perf_counter()
        populate(service, records, random.Random(records))
        load_s = time.perf_counter() - started
        clock = Clock()
        service.engine._store = TimedStore(service.engine.store, clock)  # noqa: SLF001
        undo = timed_cedar(clock)
        rows = []
        try:
            for label, who, action in (("sparse", "u0001", "delete"),
                                       ("dense", "u0000", "view")):
                body = {"subject": {"type": "user", "id": who}, "action": {"name": action},
                        "resource": {"type": "record"}}
                service.search("resource", body)  # warm up
                samples: list[float] = []
                cedar: list[float] = []
                store: list[float] = []
                found = 0
                for _ in range(repeats):
                    clock.reset()
                    t0 = time.perf_counter()
                    answer = service.search("resource", body)
                    samples.append(time.perf_counter() - t0)
                    cedar.append(clock.cedar)
                    store.append(clock.store)
                    found = len(answer["results"])
                total = statistics.fmean(samples)
                rows.append({
                    "records": records, "search": label, "results": found,
                    "repeats": repeats, "load_s": round(load_s, 2),
                    "p50_ms": round(statistics.median(samples) * 1000, 1),
                    "max_ms": round(max(samples) * 1000, 1),
                    "cedar_pct": round(100 * statistics.fmean(cedar) / total, 1),
                    "store_pct": round(100 * statistics.fmean(store) / total, 1),
                })
        finally:
            undo()
        return rows
    finally:
        service.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default="10000,100000",
                        help="comma-separated numbers of stored records")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the results here")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]

    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="pdp-bench-search-") as tmp:
        for size in sizes:
            results.extend(run_size(size, args.repeats, Path(tmp)))

    print(f"{'records':>9} {'search':<7}{'results':>8}{'p50 ms':>10}{'max ms':>10}"
          f"{'cedar %':>9}{'store %':>9}{'other %':>9}")
    for r in results:
        other = max(0.0, 100 - r["cedar_pct"] - r["store_pct"])
        print(f"{r['records']:>9} {r['search']:<7}{r['results']:>8}{r['p50_ms']:>10.1f}"
              f"{r['max_ms']:>10.1f}{r['cedar_pct']:>9.1f}{r['store_pct']:>9.1f}{other:>9.1f}")
    worst = [r for r in results if r["search"] == "sparse" and r["records"] >= 100_000]
    if worst:
        met = all(r["p50_ms"] <= TARGET_S * 1000 for r in worst)
        print(f"target: sparse p50 <= {TARGET_S:g} s at 100,000 records: "
              f"{'met' if met else 'NOT met'}")
    if args.json is not None:
        args.json.write_text(json.dumps({
            "benchmark": "search", "target_s": TARGET_S, "python": platform.python_version(),
            "machine": platform.machine(), "results": results}, indent=2) + "\n",
            encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
