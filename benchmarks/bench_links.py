"""Decision latency with 10 template links vs 100,000 template links held in the store.

A sharing policy set (one template ``permit (principal == ?principal, action ==
Action::"view", resource in ?resource)`` and a few static policies) is served by
``PDPService`` with the SQL entity store (SQLite in a temporary directory), the decision
cache off and the decision log off. N links are added through the store (user ``uI`` may
view folder ``fI mod 1000``); each request is a user with a link viewing a document in the
linked folder (a permit through one link) or in another folder (a deny), so both runs do the
same work per decision. The slice index holds linked policies like static ones, so the
number of links should not change what one decision costs: target p50(100,000) / p50(10)
<= 1.5. Also reported: how long the first decision waits for the index of every link, and
the first decision after one more link is added (the index changes by that link only).

    python -m benchmarks.bench_links [--links 10,100000] [--requests 3000] [--json OUT]
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
from pathlib import Path
from typing import Any

try:
    import pdp  # noqa: F401
except ModuleNotFoundError:  # run from a checkout without installing the package
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pdp.authzen.model import Action, Entity, EvaluationRequest
from pdp.entities import StoredEntity
from pdp.entities.sql import SQLEntityStore
from pdp.policies.links import LinkInfo
from pdp.service import PDPService
from pdp.settings import Settings

TARGET_RATIO = 1.5
FOLDERS = 1_000
SCHEMA = """\
entity User;
entity Folder;
entity Doc in [Folder];
action view, edit appliesTo { principal: User, resource: [Doc, Folder] };
"""
POLICIES = """\
@id("share")
permit (principal == ?principal, action == Action::"view", resource in ?resource);

@id("admins-edit")
permit (principal == User::"admin", action == Action::"edit", resource);

@id("no-archive")
forbid (principal, action, resource in Folder::"archive");
"""


def _service(directory: Path, links: int) -> PDPService:
    (directory / "set").mkdir()
    (directory / "set" / "p.cedar").write_text(POLICIES)
    (directory / "set" / "s.cedarschema").write_text(SCHEMA)
    settings = Settings(policies=directory / "set", data_dir=directory / "data",
                        decision_log="off", decision_cache="off", watch=False)
    service = PDPService.from_settings(settings)
    store = service.store
    assert isinstance(store, SQLEntityStore)
    store.put_many([StoredEntity.build("Doc", f"d{f}", {}, (("Folder", f"f{f}"),))
                    for f in range(FOLDERS)])
    batch: list[LinkInfo] = []
    for i in range(links):
        batch.append(LinkInfo(f"share-{i}", "share", {"?principal": ("User", f"u{i}"),
                                                      "?resource": ("Folder",
                                                                    f"f{i % FOLDERS}")}))
        if len(batch) == 10_000:
            store.put_links(batch)
            batch = []
    store.put_links(batch)
    return service


def _requests(links: int, count: int, rng: random.Random) -> list[EvaluationRequest]:
    users = min(links, 500)
    out = []
    for _ in range(count):
        i = rng.randrange(users)
        folder = i % FOLDERS if rng.random() < 0.5 else (i + 1) % FOLDERS
        out.append(EvaluationRequest(Entity("User", f"u{i}"), Action("view"),
                                     Entity("Doc", f"d{folder}")))
    return out


def run(links: int, count: int) -> dict[str, Any]:
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        service = _service(Path(tmp), links)
        try:
            started = time.perf_counter()
            service.decide([EvaluationRequest(Entity("User", "u0"), Action("view"),
                                              Entity("Doc", "d0"))])
            first = time.perf_counter() - started  # builds the index with the links
            requests = _requests(links, count, rng)
            for req in requests:  # warm: slices built, closures memoised
                service.decide([req])
            times = []
            allowed = 0
            for req in requests:
                t0 = time.perf_counter_ns()
                decision = service.decide([req])[0]
                times.append(time.perf_counter_ns() - t0)
                allowed += decision.allowed
            store = service.store
            assert isinstance(store, SQLEntityStore)
            store.put_links([LinkInfo("shared-now", "share", {
                "?principal": ("User", "newcomer"), "?resource": ("Folder", "f1")})])
            started = time.perf_counter()
            shared = service.decide([EvaluationRequest(Entity("User", "newcomer"),
                                                       Action("view"), Entity("Doc", "d1"))])
            one_more = time.perf_counter() - started
            assert shared[0].allowed
        finally:
            service.close()
    times.sort()
    return {"links": links, "requests": count, "allowed": allowed,
            "p50_us": statistics.median(times) / 1000,
            "p90_us": times[int(len(times) * 0.9)] / 1000,
            "first_decision_ms": first * 1000, "after_adding_one_link_ms": one_more * 1000}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--links", default="10,100000")
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.links.split(",")]
    results = [run(n, args.requests) for n in sizes]
    for r in results:
        print(f"{r['links']:>7} links: p50 {r['p50_us']:.1f} us, p90 {r['p90_us']:.1f} us, "
              f"{r['allowed']}/{r['requests']} permitted; first decision (indexes every link) "
              f"{r['first_decision_ms']:.0f} ms, first after adding one link "
              f"{r['after_adding_one_link_ms']:.1f} ms")
    ratio = results[-1]["p50_us"] / results[0]["p50_us"]
    verdict = "ok" if ratio <= TARGET_RATIO else "OVER TARGET"
    print(f"p50 ratio {results[-1]['links']} / {results[0]['links']} links: {ratio:.2f} "
          f"(target <= {TARGET_RATIO}: {verdict}) on {platform.python_implementation()} "
          f"{platform.python_version()}")
    if args.json:
        args.json.write_text(json.dumps({"results": results, "ratio": ratio}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
