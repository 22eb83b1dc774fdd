"""The PDP's bounded caches, on cachetools: one least-recently-used mapping, bounded by its
number of entries or by the bytes they are charged, and one with a per-entry expiry; and a
plain memo, emptied when full.

:class:`LRU`
    ``LRU(maxsize)`` holds at most ``maxsize`` entries; ``LRU(maxsize, sizeof=f)`` holds
    entries whose ``f(key, value)`` add up to at most ``maxsize`` (bytes, say). A read or a
    write makes the entry the most recent; the least recently used entries are evicted
    first. An entry larger than the whole bound is not stored (``put`` answers False).
:class:`ExpiringLRU`
    The same bounded by entries, and each entry expires ``ttl`` seconds after it was stored,
    or earlier at the ``until`` given to :meth:`ExpiringLRU.put` (a token's ``exp``). A read
    does not extend an entry's life; an expired entry is never answered, and expired entries
    are dropped before any live one is evicted. The clock is injectable (tests).
:class:`Memo`
    A dict of values cheap to compute again, bounded by entries and emptied whole when full
    (:meth:`Memo.keep`) instead of ordered: a read is one dictionary operation, atomic
    without a lock, for what is read on every request where an LRU's bookkeeping would cost
    more than it saves.
:class:`Recent`
    A :class:`Memo` that keeps what is still read: two generations, each at most half the
    bound; a read found in the older one moves the entry to the newer, and when the newer is
    full it becomes the older (the older is dropped). Approximately least recently used, so
    a burst of entries read once does not push out those read again and again, and a hit is
    still one dictionary operation (``recent[key]``, None on a miss).

Both are ``cachetools`` caches (mutable mappings: ``len``, ``in``, ``pop``, iteration) with
``get`` answering None on a miss and ``put`` for storing.

Threads. These caches are not thread-safe by themselves: every operation is a few Python
steps. A cache used from several threads is wrapped by its owner under a lock held around
each operation, together with whatever the owner updates with it:

* :class:`pdp.engine.cache.DecisionCache` (engine worker threads) and the slice memos of
  :class:`pdp.policies.index.SliceIndex` (engine worker threads) hold a ``threading.Lock``;
* the gateway's token cache and session bindings, the PEP bearer-token cache, the token
  validator's introspection answers and the rate limiter's buckets are used from the event
  loop's thread only (their callers are coroutines or ASGI middleware), so they take no lock.

Hot path. ``cachetools.LRUCache.__getitem__`` goes through four Python-level calls (and
``TLRUCache``'s through a timer context); the decision cache's and the token caches' hits are
on every request, so :meth:`LRU.get` and :meth:`ExpiringLRU.get` read the entry and move it
to the recent end with the dictionary operations cachetools itself performs (its entry table
and its order, and for expiry the entry's deadline), which keeps a hit as cheap as a plain
``OrderedDict`` (measured with ``python -m benchmarks.bench_decision_cache``).
``tests/test_caches.py`` checks the whole interface against a reference model, so a
cachetools upgrade that changed those structures fails there.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

import cachetools

__all__ = ["ExpiringLRU", "LRU", "Memo", "Recent", "sooner"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
_MISSING = object()


class LRU(cachetools.LRUCache[K, V], Generic[K, V]):
    """Least recently used first out; bounded by entries, or by ``sizeof(key, value)``."""

    def __init__(self, maxsize: int, *, sizeof: Callable[[K, V], int] | None = None) -> None:
        if maxsize < 0:
            raise ValueError("a cache's bound cannot be negative")
        self._sizeof = sizeof
        self._next_size = 1
        super().__init__(maxsize, getsizeof=self._size if sizeof is not None else None)
        # cachetools' own tables, read directly on the hit path (see the module docstring)
        self._data: dict[K, V] = self._Cache__data  # type: ignore[attr-defined]
        self._order: OrderedDict[K, None] = self._LRUCache__order  # type: ignore[attr-defined]

    def _size(self, value: V) -> int:
        # cachetools sizes a value alone; entries here are charged for key and value, so
        # ``put`` hands the size it computed to the one ``getsizeof`` call of a store
        return self._next_size

    def get(self, key: K, default: V | None = None) -> V | None:  # type: ignore[override]
        """The entry's value (now the most recent), or ``default``."""
        value = self._data.get(key, _MISSING)
        if value is _MISSING:
            return default
        self._order.move_to_end(key)
        return value  # type: ignore[return-value]

    def peek(self, key: K) -> V | None:
        """The entry's value without making it more recent, or None."""
        return self._data.get(key)

    def oldest(self) -> tuple[K, V] | None:
        """The least recently used entry (left where it is), or None if the cache is empty."""
        for key in self._order:
            return key, self._data[key]
        return None

    def put(self, key: K, value: V) -> bool:
        """Store ``value`` as the most recent entry, evicting the least recent ones to make
        room; False (nothing stored, nothing evicted) if it alone exceeds the bound."""
        size = self._sizeof(key, value) if self._sizeof is not None else 1
        if size > self.maxsize:
            return False
        self._next_size = size
        self[key] = value
        return True

    @property
    def size(self) -> int:
        """What the entries are charged together: their number, or the sum of ``sizeof``."""
        return int(self.currsize)


class Memo(dict[K, V]):
    """At most ``maxsize`` entries, emptied when full (see the module). Read it as a dict
    (from any thread: a lost race only drops or recomputes an entry); store with
    :meth:`keep`."""

    __slots__ = ("maxsize",)

    def __init__(self, maxsize: int) -> None:
        super().__init__()
        self.maxsize = maxsize

    def keep(self, key: K, value: V) -> V:
        """Store ``value`` under ``key``, emptying the memo first when it is full; ``value``."""
        if len(self) >= self.maxsize:
            self.clear()
        self[key] = value
        return value


class Recent(dict[K, "V | None"]):
    """At most ``maxsize`` entries in two generations (see the module). Read it with
    ``recent[key]`` (None on a miss: a hit in the newer generation is the dict's own lookup,
    the older one is read on a miss), from any thread: a lost race only drops or recomputes
    an entry; store with :meth:`keep`."""

    __slots__ = ("_half", "_old")

    def __init__(self, maxsize: int) -> None:
        super().__init__()
        self._half = max(maxsize // 2, 1)
        self._old: dict[K, V | None] = {}

    def __missing__(self, key: K) -> V | None:
        found = self._old.get(key)
        if found is not None:
            self.keep(key, found)
        return found

    def keep(self, key: K, value: V) -> V:
        """Store ``value`` under ``key`` in the newer generation, which becomes the older
        when it is full; ``value``."""
        if len(self) >= self._half:
            self._old = dict(self)
            self.clear()
        self[key] = value
        return value


def sooner(deadline: float, exp: object) -> float:
    """``deadline``, or ``exp`` (a token's or an answer's expiry, Unix seconds) if that is a
    number and comes first: how long a validated token may be remembered."""
    if isinstance(exp, int | float) and not isinstance(exp, bool):
        return min(deadline, float(exp))
    return deadline


class ExpiringLRU(cachetools.TLRUCache[K, V, float], Generic[K, V]):
    """Least recently used first out, bounded by entries; each entry expires ``ttl`` seconds
    after it is stored or at its ``until``, whichever comes first (``clock`` seconds)."""

    def __init__(self, maxsize: int, ttl: float, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if maxsize < 0:
            raise ValueError("a cache's bound cannot be negative")
        self.ttl = ttl
        self._until = math.inf
        self._clock = clock
        super().__init__(maxsize, self._expiry, timer=clock)
        # cachetools' own tables, read directly on the hit path (see the module docstring)
        self._data: dict[K, V] = self._Cache__data  # type: ignore[attr-defined]
        self._items: OrderedDict[K, Any] = self._TLRUCache__items  # type: ignore[attr-defined]

    def _expiry(self, key: K, value: V, now: float) -> float:
        return min(now + self.ttl, self._until)

    def get(self, key: K, default: V | None = None) -> V | None:  # type: ignore[override]
        """The entry's value if it has not expired (now the most recent), else ``default``."""
        item = self._items.get(key)
        if item is None or not self._clock() < item.expires:
            return default
        self._items.move_to_end(key)
        return self._data[key]

    def put(self, key: K, value: V, until: float | None = None) -> bool:
        """Store ``value`` until ``until`` (clock seconds; default: no earlier than ``ttl``
        allows); False if it would expire at once (an older entry for ``key`` is dropped) or
        the cache holds nothing (``maxsize`` 0)."""
        if self.maxsize < 1:
            return False
        self._until = math.inf if until is None else until
        try:
            self[key] = value
        finally:
            self._until = math.inf
        return key in self
