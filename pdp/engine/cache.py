"""Decision cache: a bounded LRU of decisions, keyed by the canonical request and the state
it was decided in.

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

* it is off (``PDP_DECISION_CACHE=off``, ``pdp serve --decision-cache off``) or its size is 0;
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

import threading
from collections import OrderedDict
from collections.abc import Hashable, Mapping
from typing import Any

import orjson

from pdp.authzen.model import Decision, EvaluationRequest

__all__ = ["DecisionCache", "DEFAULT_MAX_KEY_BYTES"]

DEFAULT_MAX_KEY_BYTES = 4096
_OPTIONS = orjson.OPT_SORT_KEYS


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


class DecisionCache:
    """Thread-safe; every operation is a few dictionary operations under one lock."""

    __slots__ = ("_max_size", "_max_key_bytes", "_entries", "_lock", "hits", "misses",
                 "bypasses")

    def __init__(self, max_size: int, *, max_key_bytes: int = DEFAULT_MAX_KEY_BYTES) -> None:
        if max_size < 1:
            raise ValueError("a decision cache holds at least one decision")
        self._max_size = max_size
        self._max_key_bytes = max_key_bytes
        self._entries: OrderedDict[tuple[Hashable, bytes], Decision] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.bypasses = 0

    @property
    def max_size(self) -> int:
        return self._max_size

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
            self._entries.move_to_end(entry)
            self.hits += 1
            return decision

    def put(self, generation: Hashable, key: bytes, decision: Decision) -> None:
        with self._lock:
            entries = self._entries
            entries[(generation, key)] = decision
            if len(entries) > self._max_size:
                entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries = OrderedDict()

    def stats(self) -> dict[str, int]:
        return {"size": len(self._entries), "max_size": self._max_size, "hits": self.hits,
                "misses": self.misses, "bypasses": self.bypasses}
