"""Prometheus metrics of every worker of a ``pdp serve --workers N`` server, from any of them.

Each worker process counts its own decisions, and a scrape of the shared port reaches one of
them. With more than one worker, each worker therefore publishes its metrics (the text
exposition, one small file per process in ``PDP_DATA_DIR/metrics/``) every
``PDP_POLL_INTERVAL``, and ``/metrics`` answers with every live worker's series, each sample
labelled ``worker="<pid>"``: the answering worker's as they are now, the others' as they last
published them (at most one interval old). Sum over ``worker`` in queries
(``sum without (worker) (rate(pdp_decisions_total[1m]))``). A restarted worker is a new
``worker`` value whose counters start at zero, which Prometheus' ``rate`` handles; the files
of processes that no longer exist are removed.

With one worker nothing is written and no ``worker`` label is added.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from prometheus_client import generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector, CollectorRegistry

__all__ = ["WorkerMetrics"]

log = logging.getLogger("pdp.http")

_SUFFIX = ".prom"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class WorkerMetrics(Collector):
    """Publishes ``own`` for the other workers and collects every worker's metrics."""

    def __init__(self, own: CollectorRegistry, directory: Path, *, interval: float,
                 pid: int | None = None) -> None:
        self._own = own
        self._directory = directory
        self._interval = interval
        self._pid = os.getpid() if pid is None else pid
        self._file = directory / f"{self._pid}{_SUFFIX}"
        self._task: asyncio.Task[None] | None = None

    # -- publishing ------------------------------------------------------------------------

    def publish(self) -> None:
        """Write this worker's current metrics where the others read them (atomically)."""
        self._directory.mkdir(parents=True, exist_ok=True)
        partial = self._file.with_suffix(".tmp")
        partial.write_bytes(generate_latest(self._own))
        partial.replace(self._file)

    def _try_publish(self) -> None:
        try:
            self.publish()
        except OSError as exc:
            log.warning("cannot publish this worker's metrics to %s: %s", self._directory, exc)

    async def _publish_forever(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            self._try_publish()

    async def start(self) -> None:
        """Publish now, then every interval."""
        self._try_publish()
        self._task = asyncio.get_running_loop().create_task(self._publish_forever())

    async def aclose(self) -> None:
        """Stop publishing and withdraw this worker's file."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(OSError):
            self._file.unlink()

    # -- collecting ------------------------------------------------------------------------

    def _others(self) -> Iterator[tuple[int, list[Metric]]]:
        try:
            files = sorted(self._directory.glob(f"*{_SUFFIX}"))
        except OSError:
            return
        for path in files:
            try:
                pid = int(path.stem)
            except ValueError:
                continue
            if pid == self._pid:
                continue
            if not _alive(pid):
                with contextlib.suppress(OSError):
                    path.unlink()
                continue
            try:
                text = path.read_text(encoding="utf-8")
                yield pid, list(text_string_to_metric_families(text))
            except (OSError, ValueError) as exc:  # being replaced, or unreadable
                log.debug("skipping worker metrics %s: %s", path, exc)

    def collect(self) -> Iterator[Metric]:
        merged: dict[str, Metric] = {}
        sources: list[tuple[int, Iterable[Metric]]] = [(self._pid, self._own.collect())]
        sources.extend(self._others())
        for pid, families in sources:
            worker = str(pid)
            for family in families:
                into = merged.get(family.name)
                if into is None:
                    into = merged[family.name] = Metric(family.name, family.documentation,
                                                        family.type, family.unit)
                elif into.type != family.type:
                    continue  # a worker of another version: skip what does not fit
                for sample in family.samples:
                    into.add_sample(sample.name, {**sample.labels, "worker": worker},
                                    sample.value, sample.timestamp)
        yield from merged.values()
