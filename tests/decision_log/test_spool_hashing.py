"""``hashed`` mode: the serving thread queues a line with something personal with a cut (a NUL
byte) between its head and its personal tail; the spool thread formats each small tail once
(digests in place) and then takes the finished text from memory; a record it cannot format is
lost alone, and counted; a line with something personal but no cut is digested all the
same."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from pdp.authzen.model import Action, Decision, Entity, EvaluationRequest
from pdp.decision_log import DecisionLog
from pdp.entities.database import open_database, sqlite_url

DECISION = Decision(True, "permit", ("p",))
CONTEXT = {"ip": "10.0.0.1"}
PERSONAL = EvaluationRequest(Entity("user", "ann", {"email": "ann@example.com"}),
                             Action("view"), Entity("doc", "d"), CONTEXT)
NOTHING_PERSONAL = EvaluationRequest(Entity("user", "ann"), Action("view"), Entity("doc", "d"))
CUT = b"\0,"
_loads = orjson.loads  # the tests' own parsing, not counted in ``parses``


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
def parses(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """What ``orjson.loads`` is asked to parse while the test runs."""
    seen: list[bytes] = []
    real = orjson.loads

    def loads(data: bytes) -> Any:
        seen.append(data)
        return real(data)

    monkeypatch.setattr(orjson, "loads", loads)
    return seen


def test_a_line_with_something_personal_is_queued_with_a_cut_before_its_personal_tail(
        logs: Callable[..., DecisionLog]) -> None:
    log = logs()
    log.evaluation("r", PERSONAL, DECISION, "v1", 0.5)
    [(rows, entry)] = log._queue
    head, tail = entry.split(CUT)
    assert rows == 1 and head.startswith(b"[")
    assert _loads(head + b"]")[2:] == ["r", None, "user", "ann", "view", "doc", "d", True,
                                       "permit", ["p"], [], "v1", 0.5, None]
    assert b"[" + tail == orjson.dumps(
        [CONTEXT, {"subject": {"email": "ann@example.com"}}, "hashed"],
        option=orjson.OPT_APPEND_NEWLINE)
    [(_, written)] = log._take()
    assert written.startswith(head + b',"hmac-sha256:') and b"\0" not in written
    assert _loads(written)[16:] == [log._hasher.digest(orjson.dumps(CONTEXT)), {  # type: ignore[union-attr]
        "subject": log._hasher.digest(b'{"email":"ann@example.com"}')}, "hashed"]  # type: ignore[union-attr]


@pytest.mark.parametrize(("mode", "request_"), [
    ("hashed", NOTHING_PERSONAL), ("full", PERSONAL), ("omitted", PERSONAL)])
def test_other_lines_are_queued_whole(logs: Callable[..., DecisionLog], mode: str,
                                      request_: EvaluationRequest) -> None:
    log = logs(mode)
    log.evaluation("r", request_, DECISION, "v1", 0.5)
    log.evaluations("r", [request_, request_], [DECISION, DECISION], "v1", 0.5)
    assert [rows for rows, _ in log._queue] == [1, 2]
    assert all(b"\0" not in entry for _, entry in log._queue)


def test_a_batch_mixing_lines_keeps_their_order(logs: Callable[..., DecisionLog]) -> None:
    log = logs()
    log.evaluations("r", [NOTHING_PERSONAL, PERSONAL, NOTHING_PERSONAL],
                    [DECISION] * 3, "v1", 0.5)
    [(rows, entry)] = log._queue
    assert rows == 3 and [CUT in line for line in entry.splitlines()] == [False, True, False]
    [(_, written)] = log._take()
    assert [_loads(line)[3] for line in written.splitlines()] == [0, 1, 2]
    assert b"\0" not in written and b"10.0.0.1" not in written


def test_a_recurring_tail_is_parsed_once_and_then_taken_from_memory(
        logs: Callable[..., DecisionLog], parses: list[bytes]) -> None:
    log = logs()
    for _ in range(3):
        log.evaluation("r", PERSONAL, DECISION, "v1", 0.5)
    log.evaluations("r", [PERSONAL, NOTHING_PERSONAL], [DECISION] * 2, "v1", 0.5)
    first = log._take()
    assert len(parses) == 1
    log.evaluation("r", PERSONAL, DECISION, "v1", 0.5)
    [(_, again)] = log._take()
    assert len(parses) == 1
    assert _loads(again)[16:] == _loads(first[0][1])[16:]
    other = EvaluationRequest(PERSONAL.subject, PERSONAL.action, PERSONAL.resource, {"ip": "x"})
    log.evaluation("r", other, DECISION, "v1", 0.5)
    log._take()
    assert len(parses) == 2


def test_the_memory_of_tails_is_bounded_in_count_and_size(
        logs: Callable[..., DecisionLog], parses: list[bytes],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("pdp.decision_log.writer._TAILS_KEPT", 3)
    log = logs()
    for i in range(10):
        log.evaluation("r", EvaluationRequest(PERSONAL.subject, PERSONAL.action,
                                              PERSONAL.resource, {"n": i}), DECISION, "v", 0.5)
        log._take()
        assert 1 <= len(log._tails) <= 3
    large = EvaluationRequest(PERSONAL.subject, PERSONAL.action, PERSONAL.resource,
                              {"note": "x" * 1000})
    parses.clear()
    for _ in range(2):
        log.evaluation("r", large, DECISION, "v", 0.5)
        log._take()
    assert len(parses) == 2  # too large to be kept: formatted each time
    assert all(len(tail) < 1000 for tail in log._tails)


def test_a_record_that_cannot_be_formatted_is_lost_alone_and_counted(
        logs: Callable[..., DecisionLog]) -> None:
    log = logs()
    log.evaluation("a", PERSONAL, DECISION, "v1", 0.5)
    [(_, line)] = log._queue
    log._put(line.split(CUT)[0] + CUT + b"not json]\n", 1)
    log.evaluations("c", [PERSONAL, NOTHING_PERSONAL], [DECISION] * 2, "v1", 0.5)
    taken = log._take()
    assert [orjson.loads(line)[2] for _, data in taken for line in data.splitlines()] == [
        "a", "c", "c"]
    stats = log.stats()
    assert stats.rejected == 1 and stats.queued == 3


def test_a_line_queued_whole_with_something_personal_is_digested_all_the_same(
        logs: Callable[..., DecisionLog]) -> None:
    log = logs()
    log.evaluation("a", PERSONAL, DECISION, "v1", 0.5)
    [(_, line)] = log._queue
    log._queue.clear()
    whole = line.replace(b"\0", b"")
    nan = EvaluationRequest(Entity("user", "ann"), Action("view"), Entity("doc", "d"),
                            float("nan"))  # type: ignore[arg-type]
    log.evaluation("n", nan, DECISION, "v1", 0.5)
    [(_, nan_line)] = log._queue
    log._queue.clear()
    log._put(whole, 1)
    log._put(whole + line, 2)
    log._put(nan_line + whole, 2)  # (as many line endings and cuts as lines)
    written = b"".join(data for _, data in log._take())
    assert len(written.splitlines()) == 5 and b"\0" not in written
    assert b"10.0.0.1" not in written and b"ann@example.com" not in written
    assert written.count(b'"hmac-sha256:') == 8


def test_a_cut_line_with_nothing_left_to_digest_is_written_without_its_cut(
        logs: Callable[..., DecisionLog]) -> None:
    """A context orjson writes as null (a NaN) still gets a cut: the line then ends like a
    line with nothing personal, and is written as the former spool thread wrote it."""
    log = logs()
    nan = EvaluationRequest(Entity("user", "ann"), Action("view"), Entity("doc", "d"),
                            float("nan"))  # type: ignore[arg-type]
    log.evaluation("a", nan, DECISION, "v1", 0.5)
    log.evaluations("b", [nan, PERSONAL, NOTHING_PERSONAL], [DECISION] * 3, "v1", 0.5)
    written = [line for _, data in log._take() for line in data.splitlines()]
    assert b"\0" not in b"".join(written)
    assert [line.endswith(b',null,null,null,"hashed"]') for line in written] == [
        True, True, False, True]
