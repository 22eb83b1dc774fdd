"""The decision path queues the decision as it is and formats nothing; the spool thread writes
its line, in ``hashed`` mode with digests in place of the values, remembering the digests of
small recurring values; an entry it cannot format is lost alone, and counted."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from pdp.authzen.model import Action, Decision, Entity, EvaluationRequest
from pdp.decision_log import DecisionLog
from pdp.decision_log.personal import Hasher
from pdp.entities.database import open_database, sqlite_url

DECISION = Decision(True, "permit", ("p",))
CONTEXT = {"ip": "10.0.0.1"}
PERSONAL = EvaluationRequest(Entity("user", "ann", {"email": "ann@example.com"}),
                             Action("view"), Entity("doc", "d"), CONTEXT)
NOTHING_PERSONAL = EvaluationRequest(Entity("user", "ann"), Action("view"), Entity("doc", "d"))


@pytest.fixture
def logs(tmp_path: Path) -> Iterator[Callable[..., DecisionLog]]:
    opened: list[DecisionLog] = []

    def make(mode: str = "hashed") -> DecisionLog:
        log = DecisionLog(open_database(sqlite_url(tmp_path / f"{len(opened)}.db")),
                          personal_data=mode,  # type: ignore[arg-type]
                          spool_dir=tmp_path / f"spool-{len(opened)}")
        opened.append(log)
        return log

    yield make
    for log in opened:
        log.database.dispose()


@pytest.fixture
def macs(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """What the hasher is asked to digest while the test runs."""
    seen: list[bytes] = []
    real = Hasher.digest

    def digest(self: Hasher, data: bytes) -> str:
        seen.append(data)
        return real(self, data)

    monkeypatch.setattr(Hasher, "digest", digest)
    return seen


@pytest.mark.parametrize("mode", ["hashed", "full", "omitted"])
def test_the_decision_path_serialises_nothing(logs: Callable[..., DecisionLog], mode: str,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    log = logs(mode)
    dumps: list[Any] = []
    monkeypatch.setattr(orjson, "dumps", lambda *a, **k: dumps.append(a) or b"")
    log.evaluation("r", PERSONAL, DECISION, "v1", 0.5)
    log.evaluations("r", [PERSONAL, NOTHING_PERSONAL], [DECISION, DECISION], "v1", 0.5)
    assert dumps == []
    [(rows, _, _, _, request, decision, _, _), (batch_rows, *_)] = log._queue
    assert (rows, request, decision, batch_rows) == (1, PERSONAL, DECISION, 2)
    assert log.stats().queued == 3


def test_a_line_with_something_personal_is_written_with_digests_in_place_of_the_values(
        logs: Callable[..., DecisionLog]) -> None:
    log = logs()
    log.evaluation("r", PERSONAL, DECISION, "v1", 0.5)
    [(rows, written)] = log._take()
    hasher = log._hasher
    assert rows == 1 and hasher is not None
    line = orjson.loads(written)
    assert line[2:16] == ["r", None, "user", "ann", "view", "doc", "d", True, "permit", ["p"],
                          [], "v1", 0.5, None]
    assert line[16:] == [hasher.digest(orjson.dumps(CONTEXT)), {
        "subject": hasher.digest(b'{"email":"ann@example.com"}')}, "hashed"]
    assert b"10.0.0.1" not in written and b"ann@example.com" not in written


def test_a_batch_mixing_lines_keeps_their_order(logs: Callable[..., DecisionLog]) -> None:
    log = logs()
    log.evaluations("r", [NOTHING_PERSONAL, PERSONAL, NOTHING_PERSONAL],
                    [DECISION] * 3, "v1", 0.5)
    [(rows, written)] = log._take()
    lines = [orjson.loads(line) for line in written.splitlines()]
    assert rows == 3 and [line[3] for line in lines] == [0, 1, 2]
    assert [line[16] is None for line in lines] == [True, False, True]
    assert b"10.0.0.1" not in written


def test_a_batch_is_written_as_it_was_when_decided(logs: Callable[..., DecisionLog]) -> None:
    log = logs("full")
    items, decisions = [PERSONAL], [DECISION]
    log.evaluations("r", items, decisions, "v1", 0.5)
    items.append(NOTHING_PERSONAL)
    decisions.append(DECISION)
    [(rows, written)] = log._take()
    assert rows == 1 and len(written.splitlines()) == 1


def test_a_recurring_value_is_digested_once_and_then_taken_from_memory(
        logs: Callable[..., DecisionLog], macs: list[bytes]) -> None:
    log = logs()
    for _ in range(3):
        log.evaluation("r", PERSONAL, DECISION, "v1", 0.5)
    log.evaluations("r", [PERSONAL, NOTHING_PERSONAL], [DECISION] * 2, "v1", 0.5)
    first = log._take()
    assert len(macs) == 2  # the context and the subject's properties
    log.evaluation("r", PERSONAL, DECISION, "v1", 0.5)
    [(_, again)] = log._take()
    assert len(macs) == 2
    assert orjson.loads(again)[16:] == orjson.loads(first[0][1])[16:]
    other = EvaluationRequest(PERSONAL.subject, PERSONAL.action, PERSONAL.resource, {"ip": "x"})
    log.evaluation("r", other, DECISION, "v1", 0.5)
    log._take()
    assert macs[2:] == [b'{"ip":"x"}']


def test_the_memory_of_digests_is_bounded_in_count_and_size(
        logs: Callable[..., DecisionLog], macs: list[bytes],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("pdp.decision_log.writer._DIGESTS_KEPT", 3)
    log = logs()
    for i in range(10):
        log.evaluation("r", EvaluationRequest(PERSONAL.subject, PERSONAL.action,
                                              PERSONAL.resource, {"n": i}), DECISION, "v", 0.5)
        log._take()
        assert 1 <= len(log._digests) <= 3
    large = EvaluationRequest(NOTHING_PERSONAL.subject, PERSONAL.action, PERSONAL.resource,
                              {"note": "x" * 1000})
    macs.clear()
    for _ in range(2):
        log.evaluation("r", large, DECISION, "v", 0.5)
        log._take()
    assert len(macs) == 2  # too large to be kept: digested each time
    assert all(len(value) < 1000 for value in log._digests)


def test_a_record_that_cannot_be_formatted_is_lost_alone_and_counted(
        logs: Callable[..., DecisionLog]) -> None:
    log = logs()
    log.evaluation("a", PERSONAL, DECISION, "v1", 0.5)
    unwritable = EvaluationRequest(PERSONAL.subject, PERSONAL.action, PERSONAL.resource,
                                   {"n": 2 ** 70})  # beyond what JSON numbers hold here
    log.evaluation("b", unwritable, DECISION, "v1", 0.5)
    log.evaluations("c", [PERSONAL, NOTHING_PERSONAL], [DECISION] * 2, "v1", 0.5)
    taken = log._take()
    assert [orjson.loads(line)[2] for _, data in taken for line in data.splitlines()] == [
        "a", "c", "c"]
    stats = log.stats()
    assert stats.rejected == 1 and stats.queued == 3


def test_a_context_written_as_null_is_not_digested(logs: Callable[..., DecisionLog]) -> None:
    """A NaN context is written as null, as the value it stands for; so is its digest."""
    log = logs()
    nan = EvaluationRequest(Entity("user", "ann"), Action("view"), Entity("doc", "d"),
                            float("nan"))  # type: ignore[arg-type]
    log.evaluation("a", nan, DECISION, "v1", 0.5)
    log.evaluations("b", [nan, PERSONAL, NOTHING_PERSONAL], [DECISION] * 3, "v1", 0.5)
    written = [line for _, data in log._take() for line in data.splitlines()]
    assert [line.endswith(b',null,null,null,"hashed"]') for line in written] == [
        True, True, False, True]
