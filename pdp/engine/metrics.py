"""Prometheus metrics of decisions, the decision cache and policy reloads, read at scrape time.

The decision path keeps plain integer counters (:class:`~pdp.engine.stats.EngineStats`, the
decision cache's counts, the reloader's counts); this collector reads them when ``/metrics``
is scraped, so a decision pays no metric lock, and its latency costs one list increment.
(Measured: a labelled ``prometheus_client`` counter plus a histogram observation cost about
3 µs per call, as much as a whole cached decision; these counters cost 0.35 µs.)

Each ``--workers`` process counts its own decisions; :mod:`pdp.http.workers` shows every
worker's series from whichever worker a scrape reaches.

| metric | type | meaning |
|---|---|---|
| ``pdp_decisions_total{outcome}`` | counter | decisions: permit, forbid, no_permit, error, invalid|
| ``pdp_decide_duration_seconds`` | histogram | engine time per evaluation or per batch |
| ``pdp_decision_cache_hits_total`` | counter | decisions answered from the cache |
| ``pdp_decision_cache_misses_total`` | counter | cacheable decisions not in the cache |
| ``pdp_decision_cache_bypasses_total`` | counter | requests the cache could not hold |
| ``pdp_decision_cache_entries`` | gauge | decisions in the cache |
| ``pdp_decision_cache_hit_ratio`` | gauge | hits / (hits + misses) since start (NaN before any) |
| ``pdp_policy_reloads_total`` | counter | reloads that installed a new policy set |
| ``pdp_policy_reload_failures_total`` | counter | reloads rejected (the last good set served) |
| ``pdp_policy_set_info{version}`` | gauge (1) | the active policy set |
| ``pdp_policy_set_loaded_timestamp_seconds`` | gauge | when it was loaded |
| ``pdp_evaluations_total{evaluator}`` | counter | requests evaluated natively or by cedarpy |
| ``pdp_policy_set_native{reason}`` | gauge | 1 if the set compiles natively, else 0 and why |
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from pdp.engine.engine import Engine
from pdp.engine.stats import LATENCY_BOUNDS
from pdp.policies.compiled import CompiledPolicySet
from pdp.policies.holder import ReloadStats

__all__ = ["DecisionCollector"]


class DecisionCollector(Collector):
    def __init__(self, engine: Engine, policies: Callable[[], CompiledPolicySet],
                 reloads: Callable[[], ReloadStats] | None = None) -> None:
        self._engine = engine
        self._policies = policies
        self._reloads = reloads

    def collect(self) -> Iterator[Metric]:
        stats = self._engine.stats
        decisions = CounterMetricFamily("pdp_decisions", "Decisions made, by outcome.",
                                        labels=["outcome"])
        for outcome, count in sorted(stats.outcomes.items()):
            decisions.add_metric([outcome], count)
        yield decisions

        buckets: list[tuple[str, float]] = []
        running = 0
        bounds = [*(repr(float(b)) for b in LATENCY_BOUNDS), "+Inf"]
        for bound, count in zip(bounds, stats.latency_buckets, strict=True):
            running += count
            buckets.append((bound, running))
        yield HistogramMetricFamily(
            "pdp_decide_duration_seconds",
            "Engine time to decide one evaluation or one batch of evaluations.",
            buckets=buckets, sum_value=stats.latency_sum_ns / 1e9)

        cache = self._engine.cache
        hits = misses = bypasses = entries = 0
        if cache is not None:
            hits, misses, bypasses, entries = cache.hits, cache.misses, cache.bypasses, len(cache)
        yield CounterMetricFamily("pdp_decision_cache_hits",
                                  "Decisions answered from the decision cache.", value=hits)
        yield CounterMetricFamily("pdp_decision_cache_misses",
                                  "Cacheable decisions not found in the decision cache.",
                                  value=misses)
        yield CounterMetricFamily("pdp_decision_cache_bypasses",
                                  "Requests the decision cache could not hold.",
                                  value=bypasses)
        yield GaugeMetricFamily("pdp_decision_cache_entries",
                                "Decisions in the decision cache.", value=entries)
        lookups = hits + misses
        yield GaugeMetricFamily("pdp_decision_cache_hit_ratio",
                                "Decision cache hits / (hits + misses) since start.",
                                value=hits / lookups if lookups else float("nan"))

        native = self._engine.native
        evaluations = CounterMetricFamily(
            "pdp_evaluations", "Requests evaluated, by evaluator (native: pdp.cedar; cedarpy: "
            "the fallback, for a policy set or value the native evaluator does not take).",
            labels=["evaluator"])
        if native is not None:
            evaluations.add_metric(["native"], native.decided)
            evaluations.add_metric(["cedarpy"], native.fallbacks)
        yield evaluations
        reason = (native.reason(self._policies()) if native is not None
                  else "PDP_EVALUATOR=cedarpy")
        is_native = GaugeMetricFamily(
            "pdp_policy_set_native", "1 when the active policy set is evaluated natively; "
            "else 0, labelled with the reason.", labels=["reason"])
        is_native.add_metric([reason or ""], 0 if reason else 1)
        yield is_native

        reloads = failures = 0
        if self._reloads is not None:
            reload_stats = self._reloads()
            reloads, failures = reload_stats.reloads, reload_stats.failures
        yield CounterMetricFamily("pdp_policy_reloads",
                                  "Policy reloads that installed a new policy set.",
                                  value=reloads)
        yield CounterMetricFamily("pdp_policy_reload_failures",
                                  "Policy reloads rejected (the last good set kept serving).",
                                  value=failures)
        current = self._policies()
        info = GaugeMetricFamily("pdp_policy_set_info", "The active policy set.",
                                 labels=["version"])
        info.add_metric([current.version], 1)
        yield info
        yield GaugeMetricFamily("pdp_policy_set_loaded_timestamp_seconds",
                                "When the active policy set was loaded (Unix time).",
                                value=current.loaded_at.timestamp())
