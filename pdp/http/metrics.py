"""HTTP server time and status per decision endpoint, kept as plain counters and read at
scrape time (the pattern of :mod:`pdp.engine.metrics`: no ``prometheus_client`` object on the
request path).

* ``pdp_http_request_duration_seconds{endpoint}`` (histogram): server time, from the request
  reaching the application to the response sent (recorded by
  :class:`pdp.http.middleware.ObservabilityMiddleware`);
* ``pdp_http_requests_total{endpoint,status}`` (counter): responses by HTTP status (401, 413
  and 429 included);
* ``pdp_http_direct_requests_total{endpoint}`` (counter): of those, the ones ``pdp serve``'s
  direct lane answered (:mod:`pdp.http.direct`).

``endpoint`` is ``evaluation``, ``evaluations``, ``search_subject``, ``search_resource``,
``search_action``, ``coaz_map`` or ``coaz_authorize``; other paths are not measured.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Mapping

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from pdp.authzen.metadata import (
    EVALUATION_PATH,
    EVALUATIONS_PATH,
    SEARCH_ACTION_PATH,
    SEARCH_RESOURCE_PATH,
    SEARCH_SUBJECT_PATH,
)

__all__ = ["ENDPOINTS", "EndpointStats", "HttpCollector", "new_stats", "HTTP_LATENCY_BOUNDS",
           "stats_by_path"]

ENDPOINTS: Mapping[str, str] = {
    EVALUATION_PATH: "evaluation",
    EVALUATIONS_PATH: "evaluations",
    SEARCH_SUBJECT_PATH: "search_subject",
    SEARCH_RESOURCE_PATH: "search_resource",
    SEARCH_ACTION_PATH: "search_action",
    "/coaz/v1/map": "coaz_map",
    "/coaz/v1/authorize": "coaz_authorize",
}
HTTP_LATENCY_BOUNDS: tuple[float, ...] = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0, 10.0)
_BOUNDS_NS = tuple(int(b * 1e9) for b in HTTP_LATENCY_BOUNDS)


class EndpointStats:
    """One endpoint's counts: plain integers, updated on the event loop's thread."""

    __slots__ = ("buckets", "sum_ns", "statuses", "direct")

    def __init__(self) -> None:
        self.buckets: list[int] = [0] * (len(_BOUNDS_NS) + 1)  # not cumulative
        self.sum_ns = 0
        self.statuses: dict[int, int] = {}
        self.direct = 0  # of them answered by the server's direct lane (pdp.http.direct)

    def observe(self, elapsed_ns: int, status: int) -> None:
        self.sum_ns += elapsed_ns
        self.buckets[bisect.bisect_left(_BOUNDS_NS, elapsed_ns)] += 1
        statuses = self.statuses
        statuses[status] = statuses.get(status, 0) + 1


def new_stats() -> dict[str, EndpointStats]:
    return {name: EndpointStats() for name in ENDPOINTS.values()}


def stats_by_path(stats: Mapping[str, EndpointStats]) -> dict[str, EndpointStats]:
    """``stats`` (by endpoint name) keyed by the endpoint's path."""
    return {path: stats[name] for path, name in ENDPOINTS.items()}


class HttpCollector(Collector):
    def __init__(self, stats: Mapping[str, EndpointStats]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        bounds = [*(repr(float(b)) for b in HTTP_LATENCY_BOUNDS), "+Inf"]
        latency = HistogramMetricFamily(
            "pdp_http_request_duration_seconds",
            "HTTP server time per decision endpoint.", labels=["endpoint"])
        requests = CounterMetricFamily("pdp_http_requests",
                                       "HTTP responses per decision endpoint and status.",
                                       labels=["endpoint", "status"])
        direct = CounterMetricFamily(
            "pdp_http_direct_requests",
            "Of those responses, the ones the server's direct lane answered "
            "(PDP_HTTP_LANE=direct).", labels=["endpoint"])
        for name, stats in sorted(self._stats.items()):
            direct.add_metric([name], stats.direct)
            running = 0
            buckets: list[tuple[str, float]] = []
            for bound, count in zip(bounds, list(stats.buckets), strict=True):
                running += count
                buckets.append((bound, running))
            latency.add_metric([name], buckets, sum_value=stats.sum_ns / 1e9)
            for status, count in sorted(dict(stats.statuses).items()):
                requests.add_metric([name, str(status)], count)
        yield latency
        yield requests
        yield direct
