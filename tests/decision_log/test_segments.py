"""Segment files stand between the decision path and SQL: what the database could not take
before a shutdown is written at the next start, exactly once; a torn last line (a machine
crash in the middle of a write) is skipped, never read as a record; a segment still held by
its writer is never deleted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pdp.authzen import Action, Decision, Entity, EvaluationRequest
from pdp.decision_log import DecisionLog, DecisionReader
from pdp.decision_log.segments import is_sealed, segments
from pdp.entities.database import open_database
from tests.entities.databases import Backend

REQUEST = EvaluationRequest(Entity("user", "ann"), Action("view"), Entity("doc", "d"),
                            {"ip": "10.0.0.1"})


def open_log(backend: Backend, spool: Path, **kwargs: Any) -> DecisionLog:
    return DecisionLog(open_database(backend.url, busy_timeout=0.2), spool_dir=spool,
                       personal_data="full", flush_interval=0.05, retry_interval=0.05,
                       **kwargs)


def request_ids(backend: Backend) -> list[str]:
    reader = DecisionReader(open_database(backend.url))
    try:
        return [r["request_id"] for r in reader.latest(1000)]
    finally:
        reader.close()


def test_what_the_database_refused_until_shutdown_is_written_once_at_the_next_start(
        backend: Backend, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    first = open_log(backend, spool, drain_timeout=0.3)
    first.start()
    first.evaluation("before", REQUEST, Decision(True, "permit", ("p",)), "v", 0.0)
    assert first.flush()
    with backend.locked():
        for i in range(50):
            first.evaluation(f"during-{i}", REQUEST, Decision(False), "v", 0.0)
        first.close()  # the database is still locked: the records stay in the segment
    assert segments(spool), "the unwritten records were kept on disk"
    assert request_ids(backend) == ["before"]

    second = open_log(backend, spool)
    second.start()
    try:
        assert second.flush()
    finally:
        second.close()
    logged = request_ids(backend)
    assert sorted(logged) == sorted(["before", *(f"during-{i}" for i in range(50))])
    assert segments(spool) == []


def test_a_torn_last_line_is_skipped_and_the_complete_lines_are_written(
        backend: Backend, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    first = open_log(backend, spool, drain_timeout=0.2)
    first.start()
    with backend.locked():
        for i in range(3):
            first.evaluation(f"r{i}", REQUEST, Decision(False), "v", 0.0)
        first.close()
    [segment] = segments(spool)
    with segment.open("ab") as f:
        f.write(b'["evaluation",1700000000.0,"torn",null,"user"')  # no end, no newline

    second = open_log(backend, spool)
    second.start()
    try:
        assert second.flush()
        assert second.stats().rejected == 1
    finally:
        second.close()
    assert sorted(request_ids(backend)) == ["r0", "r1", "r2"]
    assert segments(spool) == []


def test_the_segment_being_written_is_held_and_never_deleted(backend: Backend,
                                                              tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    log = open_log(backend, spool)
    log.start()
    try:
        log.evaluation("a", REQUEST, Decision(False), "v", 0.0)
        assert log.flush()
        [segment] = segments(spool)
        assert not is_sealed(segment)
        log.evaluation("b", REQUEST, Decision(False), "v", 0.0)
        assert log.flush()
        assert segments(spool) == [segment]  # still appended to, still there
    finally:
        log.close()
    assert segments(spool) == []
    assert sorted(request_ids(backend)) == ["a", "b"]


def test_a_segment_its_writer_never_put_in_place_is_removed_and_the_spool_is_private(
        backend: Backend, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    log = open_log(backend, spool)
    log.start()
    try:
        log.evaluation("a", REQUEST, Decision(False), "v", 0.0)
        assert log.flush()
        leftover = spool / "00000000000000000001-1-abcdef.tmp"  # a writer died before rename
        leftover.write_bytes(b"")
        log.evaluation("b", REQUEST, Decision(False), "v", 0.0)
        assert log.flush()
        assert not leftover.exists()
        assert spool.stat().st_mode & 0o077 == 0
        assert all(p.stat().st_mode & 0o077 == 0 for p in segments(spool))
    finally:
        log.close()
