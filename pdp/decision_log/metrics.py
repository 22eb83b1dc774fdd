"""Prometheus metrics of the decision log, read when ``/metrics`` is scraped.

| metric | type | meaning |
|---|---|---|
| ``pdp_decision_log_spooled_total`` | counter | decisions appended to a segment file |
| ``pdp_decision_log_synced_total`` | counter | of those, fsynced |
| ``pdp_decision_log_written_total`` | counter | decisions written to the database |
| ``pdp_decision_log_dropped_total`` | counter | decisions dropped because the queue was full |
| ``pdp_decision_log_rejected_total`` | counter | records the database refused (skipped) |
| ``pdp_decision_log_queued`` | gauge | decisions waiting in the queue (not yet in a segment) |
| ``pdp_decision_log_waiting_for_database`` | gauge | records held for a retry |
| ``pdp_decision_log_database_up`` | gauge | 1 if the last write succeeded, else 0 |
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from pdp.decision_log.writer import DecisionLog

__all__ = ["DecisionLogCollector"]


class DecisionLogCollector(Collector):
    def __init__(self, log: DecisionLog) -> None:
        self._log = log

    def collect(self) -> Iterator[Metric]:
        stats = self._log.stats()
        yield CounterMetricFamily("pdp_decision_log_spooled", "Decisions appended to a decision "
                                  "log segment file.", value=stats.spooled)
        yield CounterMetricFamily("pdp_decision_log_synced", "Decisions appended to a decision "
                                  "log segment file and fsynced.", value=stats.synced)
        yield CounterMetricFamily("pdp_decision_log_written", "Decisions written to the "
                                  "decision log database.", value=stats.written)
        yield CounterMetricFamily("pdp_decision_log_dropped", "Decisions dropped because the "
                                  "decision log queue was full.", value=stats.dropped)
        yield CounterMetricFamily("pdp_decision_log_rejected", "Decision log records the "
                                  "database refused.", value=stats.rejected)
        yield GaugeMetricFamily("pdp_decision_log_queued", "Decisions waiting in the decision "
                                "log queue.", value=stats.queued)
        yield GaugeMetricFamily("pdp_decision_log_waiting_for_database", "Decision log records "
                                "read from a segment and held for a retry.", value=stats.waiting)
        yield GaugeMetricFamily("pdp_decision_log_database_up", "1 if the last decision log "
                                "write succeeded.", value=0 if stats.last_error else 1)
