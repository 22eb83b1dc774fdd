"""The benchmark table, the target checks and the plot (latency against policy count)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

COLOURS = {"a": "tab:red", "b": "tab:orange", "c": "tab:blue", "e": "tab:purple",
           "c-cold": "tab:cyan", "d": "tab:green"}
METHODS = {
    "a": "(a) cedarpy, policy text per call",
    "b": "(b) cedarpy, pre-parsed full PolicySet",
    "c": "(c) engine, no decision cache",
    "e": "(e) engine with PDP_EVALUATOR=cedarpy",
    "c-cold": "(c) engine, requests not seen before",
    "d": "(d) engine, decision cache hit",
}


def _cell(cells: Iterable[Mapping[str, Any]], method: str, **where: int) -> Mapping[str, Any]:
    for c in cells:
        if c["method"] == method and all(c[k] == v for k, v in where.items()):
            return c
    return {}


def _us(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 10_000:
        return f"{value / 1000:,.1f} ms"
    return f"{value:,.1f} µs"


def _ratio(target: str, value: float | None, goal: float, better: str) -> dict[str, Any]:
    met = None if value is None else (value <= goal if better == "lower" else value >= goal)
    return {"target": target, "value": None if value is None else round(value, 3),
            "goal": goal, "met": met}


def targets(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    engine = results.get("engine")
    if engine:
        by_p, by_e = engine["by_policies"], engine["by_entities"]
        c10 = _cell(by_p, "c", policies=10).get("p50_us")
        c10k = _cell(by_p, "c", policies=10_000).get("p50_us")
        b10 = _cell(by_p, "b", policies=10).get("p50_us")
        b10k = _cell(by_p, "b", policies=10_000).get("p50_us")
        out.append(_ratio("(c) p50 at 10,000 policies / at 10", c10k / c10
                          if c10 and c10k else None, 2.0, "lower"))
        out.append(_ratio("(b) p50 / (c) p50 at 10,000 policies", b10k / c10k
                          if b10k and c10k else None, 100.0, "higher"))
        out.append(_ratio("(c) p50 / (b) p50 at 10 policies", c10 / b10
                          if c10 and b10 else None, 1.3, "lower"))
        most = max(c["entities"] for c in by_e) if by_e else None
        e10 = _cell(by_e, "c", entities=10).get("p50_us")
        emax = _cell(by_e, "c", entities=most).get("p50_us") if most else None
        out.append(_ratio(f"(c) p50 at {most:,} entities / at 10" if most else "entities",
                          emax / e10 if emax and e10 else None, 1.5, "lower"))
        hits = [c["p50_us"] for c in by_p if c["method"] == "d" and c.get("p50_us")]
        out.append(_ratio("(d) cache hit p50, µs (worst over policy counts)",
                          max(hits) if hits else None, 5.0, "lower"))
    http = results.get("http")
    if http and "runs" in http:
        runs = {r["name"]: r for r in http["runs"]}
        noop, ev = runs.get("noop"), runs.get("evaluation, cache off")
        out.append(_ratio("HTTP evaluation req/s / no-op req/s (cache off, 1 worker)",
                          ev["requests_per_s"] / noop["requests_per_s"]
                          if ev and noop else None, 0.5, "higher"))
        tnoop, tev = runs.get("todo: noop"), runs.get("todo: evaluation, cache off")
        out.append(_ratio("Todo scenario: evaluation req/s / no-op req/s",
                          tev["requests_per_s"] / tnoop["requests_per_s"]
                          if tev and tnoop else None, 0.5, "higher"))
        single, batch = runs.get("100 single evaluations"), runs.get(
            "evaluations, batch of 100")
        out.append(_ratio("batch of 100 decisions/s / 100 single calls",
                          batch["decisions_per_s"] / single["decisions_per_s"]
                          if single and batch else None, 5.0, "higher"))
        during = runs.get("evaluation, 4 connections, reloading")
        out.append(_ratio("p99 ms during reloads of the 10,000-policy set",
                          during["p99_ms"] if during else None, 10.0, "lower"))
    return out


def table(results: Mapping[str, Any]) -> str:
    lines: list[str] = [f"mode: {results['mode']}"]
    engine = results.get("engine")
    if engine:
        for title, cells, key in (("decision latency by policy count "
                                   "(10,000 stored entities), p50 / p99",
                                   engine["by_policies"], "policies"),
                                  ("decision latency by stored entities "
                                   "(1,000 policies), p50 / p99",
                                   engine["by_entities"], "entities")):
            sizes = sorted({c[key] for c in cells})
            lines += ["", title, f"{'':42}" + "".join(f"{n:>24,}" for n in sizes)]
            for method, label in METHODS.items():
                row = [c for c in cells if c["method"] == method]
                if not row:
                    continue
                text = []
                for n in sizes:
                    c = _cell(row, method, **{key: n})
                    if not c:
                        text.append(f"{'':>24}")
                    elif c.get("p50_us") is None:
                        text.append(f"{'skipped (> 1 s/call)':>24}")
                    else:
                        text.append(f"{_us(c['p50_us']) + ' / ' + _us(c['p99_us']):>24}")
                lines.append(f"{label:42}" + "".join(text))
        for s in engine.get("setups", []):
            lines.append(f"  {s['policies']:>7,} policies, {s['entities']:>9,} entities: "
                         f"compile {s['compile_s']} s, store load {s['store_load_s']} s, "
                         f"policy slices built {s['slice_memo']}, (b)≠(c) decisions "
                         f"{s.get('mismatches_b_vs_c', '-')}")
    http = results.get("http")
    if http:
        lines += ["", "HTTP (pdp serve, 1 worker on CPU 0; wrk -t1 on CPU 1)"]
        if "skipped" in http:
            lines.append(f"  skipped: {http['skipped']}")
        else:
            lines.append(f"  {'run':44}{'req/s':>10}{'decisions/s':>13}{'p50 ms':>9}"
                         f"{'p99 ms':>9}{'conns':>7}{'errors':>8}")
            for r in http["runs"]:
                lines.append(f"  {r['name']:44}{r['requests_per_s']:>10,.0f}"
                             f"{r['decisions_per_s']:>13,.0f}{r['p50_ms']:>9.2f}"
                             f"{r['p99_ms']:>9.2f}{r['connections']:>7}"
                             f"{r['errors'] + r['non_2xx']:>8}")
            notes = http.get("notes", {})
            lines.append(f"  reloads completed during the reloading run: "
                         f"{notes.get('reloads_during_run')} (seconds each: "
                         f"{notes.get('reload_seconds')})")
    lines += ["", "targets"]
    for t in results.get("targets", []):
        verdict = {True: "met", False: "NOT met", None: "n/a"}[t["met"]]
        lines.append(f"  {t['target']:62} {t['value']!s:>10}  goal {t['goal']:<6} {verdict}")
    return "\n".join(lines)


def plot(results: Mapping[str, Any], path: Path) -> Path | None:
    engine = results.get("engine")
    if not engine:
        return None
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # matplotlib is a dev extra
        return None
    http = {r["name"]: r for r in (results.get("http") or {}).get("runs", [])}
    fig, axes = plt.subplots(1, 3 if http else 2, figsize=(18 if http else 12, 4.5))
    for ax, cells, key, label in ((axes[0], engine["by_policies"], "policies",
                                   "policies (10,000 stored entities)"),
                                  (axes[1], engine["by_entities"], "entities",
                                   "stored entities (1,000 policies)")):
        for method, name in METHODS.items():
            points = sorted((c[key], c["p50_us"]) for c in cells
                            if c["method"] == method and c.get("p50_us"))
            if points:
                ax.plot([p[0] for p in points], [p[1] for p in points], marker="o",
                        label=name, color=COLOURS[method])
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("p50 decision latency (µs)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    if http:
        _http_bars(axes[2], http)
    fig.suptitle(f"Decision latency and HTTP throughput ({results['mode']}): native "
                 "evaluator beside cedarpy")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _http_bars(ax: Any, runs: Mapping[str, Mapping[str, Any]]) -> None:
    """The Todo scenario over HTTP: the no-op endpoint and an evaluation, for the native
    evaluator and for cedarpy, each pair measured on one server in one run."""
    groups = [("no-op endpoint", "todo: noop", "todo (cedarpy): noop"),
              ("/access/v1/evaluation", "todo: evaluation, cache off",
               "todo (cedarpy): evaluation, cache off")]
    width = 0.38
    for column, (label, colour) in enumerate((("native (default)", "tab:blue"),
                                              ("PDP_EVALUATOR=cedarpy", "tab:purple"))):
        names = [g[1 + column] for g in groups]
        heights = [runs[n]["requests_per_s"] if n in runs else 0 for n in names]
        bars = ax.bar([i + (column - 0.5) * width for i in range(len(groups))], heights,
                      width, label=label, color=colour)
        ax.bar_label(bars, fmt="%.0f", fontsize=8)
    ax.set_xticks(range(len(groups)), [g[0] for g in groups])
    ax.set_ylabel("requests/s (1 worker on 1 core, cache off)")
    ax.set_title("Todo scenario over HTTP", fontsize=10)
    ax.legend(fontsize=8)
