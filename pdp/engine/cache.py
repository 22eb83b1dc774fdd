"""Decision cache: an LRU of decisions bounded by a memory budget in bytes, keyed by the
canonical request and the state it was decided in.

Budget. Each entry is charged what it holds: its key (the canonical request, up to
``max_key_bytes``), its decision (the object, its reasons and errors) and
:data:`ENTRY_OVERHEAD` for the LRU's bookkeeping (:class:`pdp.caches.LRU`: a slot with its
resize slack in each of cachetools' three tables, entries, sizes and order, the order link,
the size, the key tuple); measured with ``tracemalloc`` by the tests, which check that
what the cache accounts is what the process allocates for it. The least recently used entries
are evicted until the total is within ``max_bytes`` (``PDP_DECISION_CACHE_BYTES``).

Key. An entry's key is the *generation* it was decided in, the active policy-set version and
the entity store's ``version``, together with the request itself, canonically encoded
(orjson with sorted keys over subject, action, resource and context, properties included, as
one JSON array). A reload or any entity change moves the generation, so every cached
decision is invalidated at once, atomically: no later lookup can reach an entry of an older
generation. Nothing is cleared eagerly (clearing tens of thousands of entries would stall the
request that noticed the change); stale entries are simply never hit again and are the first
to be evicted. Reloading a set back to an earlier version makes its entries valid again,
which they are: same policies, same entities.

Why this is sound. A Cedar decision is a pure function of the request, the policies and the
entities: Cedar has no clock, no randomness and no I/O. The engine's translation of a request
depends only on the request and the policy set (its schema). Values a PEP sends to be
compared with (the time of day, an IP address, a risk score) are part of the request, hence
of the key, so time-dependent policies stay correct: a different time is a different key.

When the cache is bypassed (the request is decided normally and nothing is stored):

* it is off (``PDP_DECISION_CACHE=off``, ``pdp serve --decision-cache off``) or its budget
  is 0;
* the entity store cannot say when its data changes: its ``version`` is ``None`` (a store
  shared with writers it cannot observe must report that, and then nothing is cached);
* the request's canonical form is larger than ``max_key_bytes`` (4 KiB by default) or cannot
  be encoded canonically: huge contexts are not worth the memory and rarely repeat;
* the decision did not come from a completed Cedar evaluation (a request that could not be
  translated, a store or evaluation failure): failures are never cached, so a transient one
  cannot outlive its cause.

The store's contract: ``version`` must change *after* a write becomes visible to readers. The
engine reads the version before it reads any entity, so at worst a decision computed from
newer data is stored under the older generation, which no lookup uses once the new version
is visible.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Hashable, Mapping
from typing import Any

import orjson

from pdp.authzen.model import Decision, EvaluationRequest
from pdp.caches import LRU

__all__ = ["DecisionCache", "DEFAULT_MAX_KEY_BYTES", "ENTRY_OVERHEAD", "entry_cost"]

DEFAULT_MAX_KEY_BYTES = 4096
#: Bytes charged per entry for the LRU itself (see the module docstring; 311 to 318 measured on
#: CPython 3.11 with tests/security/test_bounded_resources.py's workload).
ENTRY_OVERHEAD = 330
_OPTIONS = orjson.OPT_SORT_KEYS


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def entry_cost(key: bytes, decision: Decision) -> int:
    """The bytes one entry is charged: its key, its decision, the LRU's bookkeeping."""
    size = sys.getsizeof(key) + sys.getsizeof(decision) + ENTRY_OVERHEAD
    for part in (decision.reasons, decision.errors):
        if part:
            size += sys.getsizeof(part) + sum(sys.getsizeof(text) for text in part)
    if decision.error is not None:  # a small mapping of strings, as JSON about a third
        size += 240 + 3 * len(orjson.dumps(decision.error, default=str))
    return size


def _entry_cost(entry: tuple[Hashable, bytes], decision: Decision) -> int:
    return entry_cost(entry[1], decision)


class DecisionCache:
    """Thread-safe: the LRU and the counters are read and written under one lock."""

    __slots__ = ("_max_bytes", "_max_key_bytes", "_entries", "_lock", "hits", "misses",
                 "bypasses")

    def __init__(self, max_bytes: int, *, max_key_bytes: int = DEFAULT_MAX_KEY_BYTES) -> None:
        if max_bytes < 1:
            raise ValueError("a decision cache needs a budget of at least one byte")
        self._max_bytes = max_bytes
        self._max_key_bytes = max_key_bytes
        self._entries: LRU[tuple[Hashable, bytes], Decision] = LRU(max_bytes,
                                                                    sizeof=_entry_cost)
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.bypasses = 0

    @property
    def max_bytes(self) -> int:
        return self._max_bytes

    @property
    def used_bytes(self) -> int:
        """The bytes the entries held are charged (at most ``max_bytes``)."""
        return self._entries.size

    def __len__(self) -> int:
        return len(self._entries)

    def key(self, request: EvaluationRequest) -> bytes | None:
        """The canonical form of ``request``, or None (counted as a bypass) if not cacheable."""
        subject, action, resource = request.subject, request.action, request.resource
        try:
            key = orjson.dumps(
                (subject.type, subject.id, subject.properties, action.name, action.properties,
                 resource.type, resource.id, resource.properties, request.context),
                default=_plain, option=_OPTIONS)
        except TypeError:
            self.bypasses += 1
            return None
        if len(key) > self._max_key_bytes:
            self.bypasses += 1
            return None
        return key

    def get(self, generation: Hashable, key: bytes) -> Decision | None:
        entry = (generation, key)
        with self._lock:
            decision = self._entries.get(entry)
            if decision is None:
                self.misses += 1
                return None
            self.hits += 1
            return decision

    def put(self, generation: Hashable, key: bytes, decision: Decision) -> None:
        # orjson's output keeps its growth buffer (4 KiB for a 300-byte key): store an
        # exact-size copy, or the entry would hold ten times what it is charged.
        key = bytes(memoryview(key))
        with self._lock:  # an entry larger than the whole budget is not stored
            self._entries.put((generation, key), decision)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def stats(self) -> dict[str, int]:
        return {"size": len(self._entries), "bytes": self._entries.size,
                "max_bytes": self._max_bytes, "hits": self.hits, "misses": self.misses,
                "bypasses": self.bypasses}
