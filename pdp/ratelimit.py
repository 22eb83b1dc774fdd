"""Per-client token buckets (``PDP_RATE_LIMIT``), framework-free.

Each client (a key: the authenticated principal's name, or the client address) has a bucket
of ``burst`` tokens that refills at ``rate`` tokens per second; a request takes one token or
is refused with the seconds until one is available. Buckets live in this process only: with
``--workers N`` each worker keeps its own, so a client may get up to N times the rate.

Memory is bounded. A bucket idle long enough to have refilled completely is the same as a
new one and is dropped (buckets are kept in a :class:`pdp.caches.LRU`, least recently used
first, so the idle ones are found at the front in amortised constant time); beyond
``max_clients`` live buckets the least recently used one is dropped even if it is not full,
which can only favour that client. The limiter is used from the event loop's thread only
(ASGI middleware), so it takes no lock.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from pdp.caches import LRU

__all__ = ["RateLimiter"]


class RateLimiter:
    __slots__ = ("rate", "burst", "max_clients", "_clock", "_buckets", "_full_after",
                 "refused")

    def __init__(self, rate: float, burst: int | None = None, *, max_clients: int = 100_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = burst if burst is not None else max(1, math.ceil(rate))
        if self.burst < 1:
            raise ValueError("burst must be at least 1")
        self.max_clients = max_clients
        self._clock = clock
        # key → [tokens, last update]; least recently used first (``_evict`` bounds it)
        self._buckets: LRU[str, list[float]] = LRU(max(max_clients, 1) + 1)
        self._full_after = self.burst / rate  # idle seconds after which a bucket is full
        self.refused = 0

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: str) -> float:
        """Take a token for ``key``: 0.0 if allowed, else the seconds until one is free."""
        now = self._clock()
        buckets = self._buckets
        bucket = buckets.get(key)
        if bucket is None:
            self._evict(now)
            buckets.put(key, [self.burst - 1.0, now])
            return 0.0
        tokens = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
        bucket[1] = now
        if tokens >= 1.0:
            bucket[0] = tokens - 1.0
            return 0.0
        bucket[0] = tokens
        self.refused += 1
        return (1.0 - tokens) / self.rate

    def _evict(self, now: float) -> None:
        buckets = self._buckets
        horizon = now - self._full_after
        while (oldest := buckets.oldest()) is not None:
            key, bucket = oldest
            if bucket[1] > horizon and len(buckets) < self.max_clients:
                return
            del buckets[key]
