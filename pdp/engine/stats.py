"""The engine's metric hooks: plain counters the decision path bumps and ``/metrics`` reads
(:mod:`pdp.engine.metrics`)."""

from __future__ import annotations

import bisect
from collections.abc import Iterable

from pdp.authzen.model import Decision

__all__ = ["EngineStats", "LATENCY_BOUNDS"]

# Upper bounds (seconds) of the decide-latency histogram buckets; +Inf is implied.
LATENCY_BOUNDS: tuple[float, ...] = (
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
    0.05, 0.1, 0.25, 1.0)
_BOUNDS_NS = tuple(int(b * 1e9) for b in LATENCY_BOUNDS)
_OUTCOMES = ("permit", "forbid", "no_permit", "error", "invalid")


class EngineStats:
    """Counters read by ``/metrics`` and ``/status``: plain integers, no locks on the hot
    path (the server decides on its event-loop thread; under free threading a concurrent
    increment may rarely be lost, which a metric tolerates)."""

    __slots__ = ("outcomes", "latency_buckets", "latency_sum_ns")

    def __init__(self) -> None:
        self.outcomes: dict[str, int] = dict.fromkeys(_OUTCOMES, 0)
        self.latency_buckets: list[int] = [0] * (len(_BOUNDS_NS) + 1)  # not cumulative
        self.latency_sum_ns = 0

    @property
    def calls(self) -> int:
        """Calls observed (each is counted in one latency bucket)."""
        return sum(self.latency_buckets)

    def observe(self, elapsed_ns: int, decisions: Iterable[Decision]) -> None:
        self.latency_sum_ns += elapsed_ns
        self.latency_buckets[bisect.bisect_left(_BOUNDS_NS, elapsed_ns)] += 1
        outcomes = self.outcomes
        for d in decisions:
            outcomes[d.outcome] = outcomes.get(d.outcome, 0) + 1

    def observe_one(self, elapsed_ns: int, decision: Decision) -> None:
        """:meth:`observe` of a call that decided one request."""
        self.latency_sum_ns += elapsed_ns
        self.latency_buckets[bisect.bisect_left(_BOUNDS_NS, elapsed_ns)] += 1
        outcomes = self.outcomes
        outcome = decision.outcome
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
