"""Metrics of several workers (pdp.http.workers): each worker's series, labelled by worker,
from any of them; files of dead workers removed."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from pdp.http.workers import WorkerMetrics


class Fixed(Collector):
    def __init__(self, decisions: int) -> None:
        self.decisions = decisions

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily("pdp_decisions", "Decisions.", value=self.decisions)
        yield HistogramMetricFamily("pdp_decide_duration_seconds", "Time.",
                                    buckets=[("0.001", 2), ("+Inf", self.decisions)],
                                    sum_value=0.5)


def registry(decisions: int) -> CollectorRegistry:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(Fixed(decisions))
    return reg


def samples(metrics: WorkerMetrics) -> dict[tuple[str, str], float]:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(metrics)
    text = generate_latest(reg).decode()
    return {(s.name, s.labels.get("worker", "")): s.value
            for family in text_string_to_metric_families(text) for s in family.samples
            if "le" not in s.labels}


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_every_live_worker_is_shown_with_its_label_and_the_answering_one_live(
        tmp_path: Path) -> None:
    other_pid = os.getppid()  # a live process standing in for the other worker
    other = WorkerMetrics(registry(7), tmp_path, interval=1.0, pid=other_pid)
    other.publish()
    own = registry(3)
    mine = WorkerMetrics(own, tmp_path, interval=1.0)
    got = samples(mine)
    me = str(os.getpid())
    assert got[("pdp_decisions_total", me)] == 3
    assert got[("pdp_decisions_total", str(other_pid))] == 7
    assert got[("pdp_decide_duration_seconds_count", str(other_pid))] == 7
    assert got[("pdp_decide_duration_seconds_sum", me)] == 0.5


@pytest.mark.asyncio
async def test_files_of_dead_workers_are_removed_and_unreadable_ones_skipped(
        tmp_path: Path) -> None:
    gone = WorkerMetrics(registry(5), tmp_path, interval=1.0, pid=dead_pid())
    gone.publish()
    (tmp_path / f"{os.getppid()}.prom").write_text("this is { not an exposition\n")
    (tmp_path / "notes.prom").write_text("# not a worker\n")
    mine = WorkerMetrics(registry(1), tmp_path, interval=1.0)
    got = samples(mine)
    assert {worker for _, worker in got} == {str(os.getpid())}
    assert not any(p.stem.isdigit() and p.stem not in (str(os.getppid()),)
                   for p in tmp_path.glob("*.prom"))
    await mine.start()
    assert (tmp_path / f"{os.getpid()}.prom").is_file()  # published at once
    await mine.aclose()
    assert not (tmp_path / f"{os.getpid()}.prom").exists()
