"""Measure the import graph of ``pdp``: cycles between subpackages, cycles between modules, the
longest modules, and which modules import the heavy third-party packages.

    python tools/import_graph.py [--json]

Imports inside functions count (they are dependencies too); imports under ``TYPE_CHECKING`` do
not (they never run) unless ``--type-checking`` is given. A subpackage is ``pdp.X``; the
top-level modules (``pdp.service``, ``pdp.settings``, ...) count as subpackages of their own.
"""

from __future__ import annotations

import argparse
import itertools
import json
from collections.abc import Iterable, Iterator
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("cedarpy", "fastapi", "starlette", "uvicorn", "sqlalchemy", "sqlmodel", "psycopg", "mcp")
MAX_CYCLES = 100_000  # elementary cycles counted at most (the count is reported as ">=" past it)


def unit(module: str) -> str:
    """``pdp.engine.cache`` -> ``pdp.engine``; ``pdp.service`` -> ``pdp.service``."""
    return ".".join(module.split(".")[:2])


def sccs(nodes: Iterable[str], edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components (Tarjan), each sorted; only those of two or more nodes."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = itertools.count()

    def visit(v: str) -> None:
        index[v] = low[v] = next(counter)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return sorted(out, key=lambda c: (-len(c), c))


def elementary_cycles(nodes: list[str], edges: dict[str, set[str]]) -> Iterator[list[str]]:
    """Every elementary cycle once (rooted at its smallest node; fine for small graphs)."""
    order = {n: i for i, n in enumerate(sorted(nodes))}
    for start in sorted(nodes):
        yield from _cycles_from(start, [start], edges, order)


def _cycles_from(start: str, path: list[str], edges: dict[str, set[str]],
                 order: dict[str, int]) -> Iterator[list[str]]:
    for w in sorted(edges.get(path[-1], ())):
        if w == start:
            yield list(path)
        elif order[w] > order[start] and w not in path:
            yield from _cycles_from(start, [*path, w], edges, order)


def measure(type_checking: bool = False) -> dict[str, object]:
    graph = grimp.build_graph("pdp", *HEAVY, exclude_type_checking_imports=not type_checking)
    modules = sorted(m for m in graph.modules if m == "pdp" or m.startswith("pdp."))
    module_edges: dict[str, set[str]] = {m: set() for m in modules}
    unit_edges: dict[str, set[str]] = {}
    heavy_users: dict[str, set[str]] = {h: set() for h in HEAVY}
    for m in modules:
        for imported in graph.find_modules_directly_imported_by(m):
            top = imported.split(".")[0]
            if top in heavy_users:
                heavy_users[top].add(m)
            if imported in module_edges and imported != m:
                module_edges[m].add(imported)
                a, b = unit(m), unit(imported)
                if a != b and a != "pdp" and b != "pdp":
                    unit_edges.setdefault(a, set()).add(b)
    units = sorted({unit(m) for m in modules if m != "pdp"})
    cycles = list(itertools.islice(elementary_cycles(units, unit_edges), MAX_CYCLES))
    two_way = sorted((a, b) for a in unit_edges for b in unit_edges[a]
                     if a < b and a in unit_edges.get(b, set()))
    lines = {}
    for m in modules:
        path = ROOT / (m.replace(".", "/") + ".py")
        if not path.exists():
            path = ROOT / m.replace(".", "/") / "__init__.py"
        lines[m] = sum(1 for _ in path.open())
    longest = sorted(lines.items(), key=lambda kv: -kv[1])[:5]
    return {
        "subpackage_cycles": len(cycles),
        "subpackage_cycles_capped": len(cycles) >= MAX_CYCLES,
        "subpackage_sccs": sccs(units, unit_edges),
        "two_way_subpackage_pairs": two_way,
        "module_sccs": sccs(modules, module_edges),
        "longest_modules": longest,
        "heavy_importers": {h: sorted(v) for h, v in heavy_users.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--type-checking", action="store_true",
                        help="count imports under TYPE_CHECKING too")
    args = parser.parse_args()
    result = measure(args.type_checking)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    capped = ">=" if result["subpackage_cycles_capped"] else ""
    print(f"elementary import cycles between subpackages: {capped}{result['subpackage_cycles']}")
    for comp in result["subpackage_sccs"]:  # type: ignore[attr-defined]
        print(f"  tangled subpackages ({len(comp)}): {', '.join(comp)}")
    print(f"subpackage pairs importing each other: {len(result['two_way_subpackage_pairs'])}")  # type: ignore[arg-type]
    for a, b in result["two_way_subpackage_pairs"]:  # type: ignore[attr-defined]
        print(f"  {a} <-> {b}")
    mods = result["module_sccs"]
    print(f"module-level cycles (strongly connected groups): {len(mods)}")  # type: ignore[arg-type]
    for comp in mods:  # type: ignore[attr-defined]
        print(f"  {len(comp)} modules: {', '.join(comp)}")
    print("longest modules:")
    for m, n in result["longest_modules"]:  # type: ignore[attr-defined]
        print(f"  {n:5d} {m}")
    print("modules importing heavy packages directly:")
    for h, users in result["heavy_importers"].items():  # type: ignore[attr-defined]
        print(f"  {h}: {', '.join(users) or '-'}")


if __name__ == "__main__":
    main()
