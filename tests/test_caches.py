"""The bounded caches (pdp.caches): bounds by entries and by size, least-recently-used order,
expiry on a fake clock, and both caches against a reference model of what they promise."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from pdp.caches import LRU, ExpiringLRU, Memo, Recent, sooner
from tests.profiles import examples


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# -- LRU ----------------------------------------------------------------------------------------


def test_an_lru_bounded_by_entries_evicts_the_least_recently_used() -> None:
    cache: LRU[str, int] = LRU(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # a is now the most recent
    cache.put("c", 3)
    assert "b" not in cache and cache.get("a") == 1 and cache.get("c") == 3
    assert len(cache) == 2 and cache.size == 2


def test_peeking_does_not_make_an_entry_more_recent() -> None:
    cache: LRU[str, int] = LRU(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.peek("a") == 1
    cache.put("c", 3)
    assert cache.peek("a") is None and cache.peek("b") == 2


def test_the_oldest_entry_is_the_least_recently_used_and_stays_where_it_is() -> None:
    cache: LRU[str, int] = LRU(3)
    assert cache.oldest() is None
    cache.put("a", 1)
    cache.put("b", 2)
    cache.get("a")
    assert cache.oldest() == ("b", 2) and cache.oldest() == ("b", 2)


def test_an_lru_bounded_by_size_charges_key_and_value_and_stays_within_its_bound() -> None:
    cache: LRU[str, bytes] = LRU(10, sizeof=lambda key, value: len(key) + len(value))
    assert cache.put("a", b"1234")  # 5
    assert cache.put("b", b"123")  # 4: 9 in all
    assert cache.size == 9
    assert cache.put("c", b"12")  # 3: a goes
    assert "a" not in cache and cache.size == 7
    assert cache.put("b", b"1234567")  # b grows to 8: c goes
    assert list(cache) == ["b"] and cache.size == 8


def test_an_entry_larger_than_the_whole_bound_is_not_stored_and_evicts_nothing() -> None:
    cache: LRU[str, bytes] = LRU(10, sizeof=lambda key, value: len(value))
    cache.put("a", b"12345")
    assert not cache.put("b", b"x" * 11)
    assert "b" not in cache and cache.get("a") == b"12345" and cache.size == 5


def test_an_lru_of_size_zero_keeps_nothing() -> None:
    cache: LRU[str, int] = LRU(0)
    assert not cache.put("a", 1)
    assert len(cache) == 0 and cache.get("a") is None


def test_a_miss_answers_the_default() -> None:
    cache: LRU[str, int] = LRU(2)
    assert cache.get("a") is None and cache.get("a", 7) == 7


# -- ExpiringLRU ----------------------------------------------------------------------------


def test_a_memo_keeps_at_most_its_bound_and_is_emptied_when_full() -> None:
    memo: Memo[str, int] = Memo(2)
    assert memo.keep("a", 1) == 1 and memo.keep("b", 2) == 2
    assert memo == {"a": 1, "b": 2} and memo.get("a") == 1
    assert memo.keep("b", 3) == 3 and memo == {"b": 3}  # full: emptied before storing
    assert memo.keep("c", 4) == 4 and memo == {"b": 3, "c": 4}
    assert memo.get("z") is None


def test_recent_keeps_an_entry_read_again_through_a_burst_of_entries_read_once() -> None:
    recent: Recent[str, int] = Recent(8)
    recent.keep("kept", 1)
    for i in range(100):
        recent.keep(f"once-{i}", i)
        assert recent["kept"] == 1  # read again between the others
    assert recent["once-0"] is None  # long gone
    assert len(recent) + len(recent._old) <= 8


def test_recent_drops_an_entry_not_read_within_two_generations() -> None:
    recent: Recent[str, int] = Recent(4)
    recent.keep("a", 1)
    for i in range(4):
        recent.keep(f"b{i}", i)
    assert recent["a"] is None and recent["b3"] == 3 and "a" not in recent


@settings(max_examples=examples(100))
@given(ops=st.lists(st.tuples(st.booleans(), st.integers(0, 20)), max_size=200),
       maxsize=st.integers(1, 10))
def test_recent_answers_a_kept_value_or_none_and_stays_bounded(
        ops: list[tuple[bool, int]], maxsize: int) -> None:
    recent: Recent[int, int] = Recent(maxsize)
    for write, key in ops:
        if write:
            recent.keep(key, key * 10)
        else:
            assert recent[key] in (None, key * 10)
        assert len(recent) + len(recent._old) <= max(maxsize // 2, 1) * 2


def test_an_entry_expires_its_ttl_after_it_was_stored() -> None:
    clock = Clock()
    cache: ExpiringLRU[str, int] = ExpiringLRU(10, 5.0, clock=clock)
    cache.put("a", 1)
    clock.now += 4.999
    assert cache.get("a") == 1
    clock.now += 0.001
    assert cache.get("a") is None and len(cache) == 0


def test_reading_an_entry_does_not_extend_its_life() -> None:
    clock = Clock()
    cache: ExpiringLRU[str, int] = ExpiringLRU(10, 5.0, clock=clock)
    cache.put("a", 1)
    for _ in range(4):
        clock.now += 1.0
        assert cache.get("a") == 1
    clock.now += 1.0
    assert cache.get("a") is None


def test_an_entry_expires_at_its_own_until_when_that_comes_first() -> None:
    clock = Clock()
    cache: ExpiringLRU[str, int] = ExpiringLRU(10, 60.0, clock=clock)
    cache.put("a", 1, until=clock.now + 2.0)
    cache.put("b", 2, until=clock.now + 600.0)  # later than the ttl: the ttl wins
    clock.now += 2.0
    assert cache.get("a") is None and cache.get("b") == 2
    clock.now += 58.0
    assert cache.get("b") is None


def test_an_entry_already_expired_is_not_stored_and_drops_the_older_one() -> None:
    clock = Clock()
    cache: ExpiringLRU[str, int] = ExpiringLRU(10, 60.0, clock=clock)
    cache.put("a", 1)
    assert not cache.put("a", 2, until=clock.now)
    assert cache.get("a") is None


def test_storing_again_restarts_an_entrys_life() -> None:
    clock = Clock()
    cache: ExpiringLRU[str, int] = ExpiringLRU(10, 5.0, clock=clock)
    cache.put("a", 1)
    clock.now += 4.0
    cache.put("a", 2)
    clock.now += 4.0
    assert cache.get("a") == 2


def test_expired_entries_go_before_a_live_one_is_evicted() -> None:
    clock = Clock()
    cache: ExpiringLRU[str, int] = ExpiringLRU(2, 60.0, clock=clock)
    cache.put("old", 1, until=clock.now + 1.0)
    cache.put("live", 2)
    clock.now += 1.0
    cache.put("new", 3)
    assert cache.get("live") == 2 and cache.get("new") == 3


def test_a_full_expiring_lru_evicts_the_least_recently_used_live_entry() -> None:
    clock = Clock()
    cache: ExpiringLRU[str, int] = ExpiringLRU(2, 60.0, clock=clock)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1
    cache.put("c", 3)
    assert cache.get("b") is None and cache.get("a") == 1 and cache.get("c") == 3


def test_an_expiring_lru_of_size_zero_keeps_nothing() -> None:
    cache: ExpiringLRU[str, int] = ExpiringLRU(0, 60.0, clock=Clock())
    assert not cache.put("a", 1)
    assert cache.get("a") is None


def test_sooner_takes_a_numeric_expiry_only_when_it_comes_first() -> None:
    assert sooner(100.0, 50) == 50.0
    assert sooner(100.0, 150.5) == 100.0
    assert sooner(100.0, None) == 100.0
    assert sooner(100.0, True) == 100.0  # a boolean is not a time
    assert sooner(100.0, "50") == 100.0


# -- both against a reference model -----------------------------------------------------------

KEYS = st.sampled_from("abcdef")
SIZED = settings(max_examples=examples(40), stateful_step_count=30, deadline=None)


class SizedLRUModel(RuleBasedStateMachine):
    """An LRU bounded by size against a list of (key, value, size), least recent first."""

    BOUND = 12

    def __init__(self) -> None:
        super().__init__()
        self.cache: LRU[str, int] = LRU(self.BOUND, sizeof=lambda key, value: value)
        self.model: list[tuple[str, int]] = []

    def _find(self, key: str) -> int | None:
        return next((i for i, (k, _) in enumerate(self.model) if k == key), None)

    @rule(key=KEYS, value=st.integers(0, 15))
    def put(self, key: str, value: int) -> None:
        stored = self.cache.put(key, value)
        if value > self.BOUND:
            assert not stored
            return
        assert stored
        found = self._find(key)
        if found is not None:
            del self.model[found]
        while sum(v for _, v in self.model) + value > self.BOUND:
            del self.model[0]
        self.model.append((key, value))

    @rule(key=KEYS)
    def get(self, key: str) -> None:
        found = self._find(key)
        expected = None if found is None else self.model[found][1]
        assert self.cache.get(key) == expected
        if found is not None:
            self.model.append(self.model.pop(found))

    @rule(key=KEYS)
    def peek(self, key: str) -> None:
        found = self._find(key)
        assert self.cache.peek(key) == (None if found is None else self.model[found][1])

    @rule()
    def oldest(self) -> None:
        assert self.cache.oldest() == (self.model[0] if self.model else None)

    @rule(key=KEYS)
    def pop(self, key: str) -> None:
        found = self._find(key)
        assert self.cache.pop(key, None) == (None if found is None else self.model[found][1])
        if found is not None:
            del self.model[found]

    @invariant()
    def same_entries_within_the_bound(self) -> None:  # (the order shows in what evicts)
        assert sorted((key, self.cache.peek(key)) for key in self.cache) == sorted(self.model)
        assert self.cache.size == sum(v for _, v in self.model) <= self.BOUND
        assert len(self.cache) == len(self.model)


class ExpiringLRUModel(RuleBasedStateMachine):
    """An expiring LRU on a fake clock against a list of (key, value, expiry), least recent
    first."""

    BOUND = 3
    TTL = 10.0

    def __init__(self) -> None:
        super().__init__()
        self.clock = Clock()
        self.cache: ExpiringLRU[str, int] = ExpiringLRU(self.BOUND, self.TTL,
                                                          clock=self.clock)
        self.model: list[tuple[str, int, float]] = []

    def _live(self) -> None:
        self.model = [e for e in self.model if self.clock.now < e[2]]

    def _find(self, key: str) -> int | None:
        return next((i for i, e in enumerate(self.model) if e[0] == key), None)

    @rule(seconds=st.sampled_from([0.5, 1.0, 3.0, 9.5]))
    def time_passes(self, seconds: float) -> None:
        self.clock.now += seconds

    @rule(key=KEYS, value=st.integers(0, 9), lifetime=st.none() | st.sampled_from([-1, 2, 20]))
    def put(self, key: str, value: int, lifetime: float | None) -> None:
        until = None if lifetime is None else self.clock.now + lifetime
        self.cache.put(key, value, until)
        self._live()
        found = self._find(key)
        if found is not None:
            del self.model[found]
        expires = sooner(self.clock.now + self.TTL, until)
        if not self.clock.now < expires:
            return
        while len(self.model) >= self.BOUND:
            del self.model[0]
        self.model.append((key, value, expires))

    @rule(key=KEYS)
    def get(self, key: str) -> None:
        self._live()
        found = self._find(key)
        assert self.cache.get(key) == (None if found is None else self.model[found][1])
        if found is not None:
            self.model.append(self.model.pop(found))

    @invariant()
    def the_live_entries_are_the_models(self) -> None:
        self._live()
        assert len(self.cache) == len(self.model) <= self.BOUND
        assert sorted(self.cache) == sorted(k for k, _, _ in self.model)


TestAnLRUBoundedBySizeBehavesLikeItsModel = SizedLRUModel.TestCase
TestAnLRUBoundedBySizeBehavesLikeItsModel.settings = SIZED
TestAnExpiringLRUBehavesLikeItsModel = ExpiringLRUModel.TestCase
TestAnExpiringLRUBehavesLikeItsModel.settings = SIZED
