"""The decision cache: canonical keys, generations, bounds, bypasses, and what the service
reports about it."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from pdp.authzen.model import Action, Decision, Entity, EvaluationRequest
from pdp.engine.cache import DecisionCache, entry_cost
from tests.conftest import POLICIES, make_service

ALLOW = Decision(True, "permit", ("p",))


def request(**context: object) -> EvaluationRequest:
    return EvaluationRequest(Entity("user", "alice", {"a": 1, "b": 2}), Action("read"),
                             Entity("doc", "d"), dict(context) or None)


def test_the_key_does_not_depend_on_the_order_of_properties() -> None:
    cache = DecisionCache(1_000_000)
    one = EvaluationRequest(Entity("user", "alice", {"a": 1, "b": 2}), Action("read"),
                            Entity("doc", "d"), {"x": 1, "y": [1, 2]})
    two = EvaluationRequest(Entity("user", "alice", {"b": 2, "a": 1}), Action("read"),
                            Entity("doc", "d"), {"y": [1, 2], "x": 1})
    assert cache.key(one) == cache.key(two)
    assert cache.key(one) != cache.key(request(x=2))


def test_a_decision_is_found_only_in_the_generation_it_was_made_in() -> None:
    cache = DecisionCache(1_000_000)
    key = cache.key(request())
    assert key is not None
    cache.put(("v1", 1), key, ALLOW)
    assert cache.get(("v1", 1), key) is ALLOW
    assert cache.get(("v1", 2), key) is None  # an entity changed
    assert cache.get(("v2", 1), key) is None  # the policies changed
    assert (cache.hits, cache.misses) == (1, 2)


def test_the_least_recently_used_decision_goes_first() -> None:
    keys = [DecisionCache(1).key(request(n=n)) for n in range(3)]
    assert all(k is not None for k in keys)
    first, second, third = (k for k in keys if k is not None)
    cache = DecisionCache(2 * entry_cost(first, ALLOW))  # room for two
    cache.put("g", first, ALLOW)
    cache.put("g", second, ALLOW)
    assert cache.get("g", first) is ALLOW  # first is now the most recent
    cache.put("g", third, ALLOW)
    assert cache.get("g", second) is None
    assert cache.get("g", first) is ALLOW and len(cache) == 2


def test_a_request_too_large_to_be_worth_keeping_bypasses_the_cache() -> None:
    cache = DecisionCache(1_000_000, max_key_bytes=64)
    assert cache.key(request(blob="x" * 100)) is None
    assert cache.stats()["bypasses"] == 1


def test_a_request_that_cannot_be_encoded_canonically_bypasses_the_cache() -> None:
    cache = DecisionCache(1_000_000)
    assert cache.key(request(n=2**70)) is None
    assert cache.bypasses == 1


def test_the_service_reports_the_cache_and_the_setting_turns_it_off(tmp_path: Path) -> None:
    on = make_service(POLICIES / "todo", entity_store="memory")
    req = EvaluationRequest(Entity("user", "CiRmZDA2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMG"
                                           "QSBWxvY2Fs"), Action("can_read_todos"),
                            Entity("todo", "1"))
    on.decide([req])
    on.decide([req])
    status = on.status()["decision_cache"]
    assert status["enabled"] and status["hits"] == 1 and status["misses"] == 1
    off = make_service(POLICIES / "todo", entity_store="memory", decision_cache="off")
    off.decide([req])
    assert off.engine.cache is None
    assert off.status()["decision_cache"] == {"enabled": False}


def test_threads_storing_and_reading_at_once_keep_the_cache_consistent() -> None:
    keys = [k for k in (DecisionCache(1).key(request(n=n)) for n in range(200))
            if k is not None]
    decisions = [Decision(n % 2 == 0, "permit", (f"p{n}",)) for n in range(len(keys))]
    cache = DecisionCache(60 * entry_cost(keys[0], decisions[0]))  # room for about 60
    wrong: list[int] = []

    def work(offset: int) -> None:
        for round_ in range(30):
            for n in range(offset, len(keys), 3):
                cache.put("g", keys[n], decisions[n])
                found = cache.get("g", keys[(n + round_) % len(keys)])
                if found is not None and found is not decisions[(n + round_) % len(keys)]:
                    wrong.append(n)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as the interpreter can
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert not wrong
    held = [(k, d) for k, d in zip(keys, decisions, strict=True)
            if cache._entries.peek(("g", k)) is not None]
    assert len(held) == len(cache) > 0
    assert cache.used_bytes == sum(entry_cost(k, d) for k, d in held) <= cache.max_bytes
