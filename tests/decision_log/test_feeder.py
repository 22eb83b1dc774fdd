"""With ``ingest="process"`` a feeder process, not the serving process, feeds the segments into
SQL: every decision reaches the table exactly once, the feeder's counters show in the log's
statistics, a feeder that dies is started again, and closing the log feeds everything
accepted before the feeder stops."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from pdp.authzen import Action, Decision, Entity, EvaluationRequest
from pdp.decision_log import DecisionLog, DecisionReader
from pdp.entities.database import open_database
from tests.entities.databases import Backend
from tests.waiting import wait_until


def request(i: int) -> EvaluationRequest:
    return EvaluationRequest(Entity("user", f"u{i}"), Action("view"), Entity("doc", "d"))


def decide(log: DecisionLog, prefix: str, count: int) -> None:
    for i in range(count):
        log.evaluation(f"{prefix}-{i}", request(i), Decision(True, "permit", ("p",)), "v1",
                       0.001)


def feeder_pid(log: DecisionLog) -> int:
    pid = log.status().get("feeder_pid")
    assert isinstance(pid, int)
    return pid


@pytest.fixture
def process_logs(backend: Backend) -> Iterator[Callable[..., DecisionLog]]:
    opened: list[DecisionLog] = []

    def make(**kwargs: Any) -> DecisionLog:
        log = DecisionLog(open_database(backend.url, busy_timeout=0.2), ingest="process",
                          flush_interval=0.05, retry_interval=0.1, **kwargs)
        opened.append(log)
        return log

    yield make
    for log in opened:
        log.close()


@pytest.fixture
def reader(backend: Backend) -> Iterator[DecisionReader]:
    found = DecisionReader(open_database(backend.url))
    yield found
    found.close()


def request_ids(reader: DecisionReader, prefix: str) -> list[str]:
    rows = reader.latest(1000)
    return [r["request_id"] for r in rows if r["request_id"].startswith(prefix)]


def test_a_feeder_process_writes_every_decision_and_its_counters_show(
        process_logs: Callable[..., DecisionLog], reader: DecisionReader) -> None:
    log = process_logs()
    log.start()
    pid = feeder_pid(log)
    assert pid != os.getpid() and log.status()["ingest"] == "process"
    decide(log, "fed", 50)
    wait_until(lambda: log.stats().written == 50)  # the feeder did it: nothing asked to flush
    assert sorted(request_ids(reader, "fed-")) == sorted(f"fed-{i}" for i in range(50))
    assert log.stats().last_write is not None and log.stats().last_error is None


def test_a_feeder_killed_outright_is_started_again_and_nothing_is_written_twice(
        process_logs: Callable[..., DecisionLog], reader: DecisionReader) -> None:
    log = process_logs()
    log.start()
    first = feeder_pid(log)
    decide(log, "before", 30)
    wait_until(lambda: log.stats().written == 30)
    os.kill(first, signal.SIGKILL)
    decide(log, "after", 30)
    wait_until(lambda: log.status().get("feeder_pid") not in (None, first), timeout=20)
    wait_until(lambda: log.stats().written == 60, timeout=20)
    ids = request_ids(reader, "before-") + request_ids(reader, "after-")
    assert len(ids) == len(set(ids)) == 60


def test_closing_feeds_everything_accepted_then_stops_the_feeder(
        process_logs: Callable[..., DecisionLog], reader: DecisionReader) -> None:
    log = process_logs()
    log.start()
    pid = feeder_pid(log)
    decide(log, "last", 200)
    log.close()
    assert sorted(request_ids(reader, "last-")) == sorted(f"last-{i}" for i in range(200))
    assert log.stats().written == 200
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # already reaped: the feeder exited


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="SCHED_IDLE is Linux's")
def test_the_feeder_runs_at_the_lowest_cpu_priority_so_it_never_takes_a_busy_core(
        process_logs: Callable[..., DecisionLog]) -> None:
    log = process_logs()
    log.start()
    pid = feeder_pid(log)
    decide(log, "idle", 5)
    wait_until(lambda: log.stats().written == 5)  # it has set itself up and fed a round
    assert os.sched_getscheduler(pid) == os.SCHED_IDLE
