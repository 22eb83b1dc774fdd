"""The feeder process: the decision log's SQL ingest, out of the serving process.

Feeding segments into SQL (:mod:`pdp.decision_log.ingest`) is the decision log's only heavy
work. In a thread of the serving process it shares the interpreter lock with the decisions;
in a process of its own it shares at most a core, at the lowest CPU priority
(``SCHED_IDLE`` on Linux, else niceness 19: :mod:`pdp.decision_log.priority`), and
the serving process keeps only the cheap part (queueing lines and appending them to its
segment). ``PDP_DECISION_LOG_INGEST=process`` (the default) runs it so: each serving process
starts one feeder (``python -m pdp.decision_log``) and supervises it.

Nothing about exactly-once changes: a round holds the spool directory's ingest lock and moves
each segment's checkpoint in the transaction that inserts its lines, so the feeder, the
serving process's own rounds (``flush``, the final drain on ``close``) and the feeders of
other workers never feed a line twice.

The pipes. The parent writes the feeder's configuration (one JSON line, the database URL
included, so that no secret appears on a command line) to its stdin and keeps stdin open:
end of file on stdin (the parent closed it, or died, even by ``kill -9``) tells the feeder to
feed what is left for up to ``drain_timeout`` seconds and exit. After each round the feeder
writes its counters (one JSON line) to its stdout, without ever blocking: the parent reads
the newest line when asked for statistics, so no thread of the serving process waits on it.
SIGTERM and SIGINT make the feeder finish its round and drain the same way.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import IO, Any

import orjson
from pydantic import Field

from pdp.decision_log.ingest import Ingester
from pdp.decision_log.priority import lowest_priority
from pdp.entities.database import open_database
from pdp.logs import make_handler
from pdp.settings import SettingsModel

__all__ = ["Feeder", "FeederConfig", "FeederStats", "main"]

log = logging.getLogger("pdp.decision_log")

RESTART_DELAY = 1.0  # seconds before a feeder that died is started again (doubling, to 30)


class FeederConfig(SettingsModel):
    """What a feeder process is started with (from the server's settings, sent on its stdin
    so that no secret is on a command line)."""

    url: str = Field(description="The decision log's database URL (PDP_DECISION_LOG_URL).")
    spool_dir: str = Field(description="The directory of the spooled segments it feeds.")
    retention_days: float = Field(description="Days decisions are kept.")
    purge_interval: float = Field(description="Seconds between purges of old decisions.")
    flush_interval: float = Field(description="Seconds between looks for new segments.")
    retry_interval: float = Field(description="Seconds before a failed write is tried again.")
    drain_timeout: float = Field(description="Seconds it may take to feed what is left when "
                                 "told to stop.")
    log_format: str = Field(default="text", description="'text' or 'json' (PDP_LOG_FORMAT).")
    log_level: str = Field(default="INFO", description="Its log level.")


@dataclass(frozen=True, slots=True)
class FeederStats:
    """A feeder's counters since it started (see :class:`pdp.decision_log.ingest.Ingester`)."""

    written: int = 0
    rejected: int = 0
    waiting: int = 0
    last_error: str | None = None
    last_write: float | None = None


class Feeder:
    """The parent's handle on one feeder process: start, supervise, read counters, stop.

    Counters of feeders that exited (restarted ones) are kept, so they only ever grow."""

    def __init__(self, config: FeederConfig) -> None:
        self._config = config
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._buffer = b""
        self._current = FeederStats()
        self._before = FeederStats()  # summed counters of feeders that exited
        self._delay = RESTART_DELAY
        self._restart_at = 0.0
        self._stopped = False

    def start(self) -> None:
        proc = subprocess.Popen(  # noqa: S603 - our own module, under this interpreter
            [sys.executable, "-m", "pdp.decision_log"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, close_fds=True)
        assert proc.stdin is not None and proc.stdout is not None
        os.set_blocking(proc.stdout.fileno(), False)
        proc.stdin.write(orjson.dumps(self._config.model_dump(), option=orjson.OPT_APPEND_NEWLINE))
        proc.stdin.flush()
        with self._lock:
            self._proc = proc

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return None if proc is None else proc.pid

    def supervise(self) -> None:
        """Start the feeder again if it died (called now and then by the spool thread)."""
        proc = self._proc
        if self._stopped or proc is None or proc.poll() is None:
            return
        now = time.monotonic()
        if not self._restart_at:
            log.error("decision log: the feeder process exited (status %s); restarting it in "
                      "%.0f s", proc.returncode, self._delay)
            self._restart_at = now + self._delay
            self._delay = min(self._delay * 2, 30.0)
            return
        if now < self._restart_at:
            return
        self._retire(proc)
        self._restart_at = 0.0
        try:
            self.start()
        except OSError as exc:
            log.error("decision log: cannot start the feeder process: %s", exc)

    def stats(self) -> FeederStats:
        with self._lock:
            proc = self._proc
            if proc is not None and proc.stdout is not None:
                self._read(proc.stdout)
            now, before = self._current, self._before
        return FeederStats(before.written + now.written, before.rejected + now.rejected,
                           now.waiting, now.last_error, now.last_write or before.last_write)

    def stop(self, timeout: float) -> bool:
        """Close the feeder's stdin (it drains and exits) and wait up to ``timeout`` seconds;
        True if it exited in time (else it is killed)."""
        self._stopped = True
        proc = self._proc
        if proc is None:
            return True
        if proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.error("decision log: the feeder process did not stop in %.0f s; killed", timeout)
            proc.kill()
            proc.wait()
            exited = False
        else:
            exited = True
        self._retire(proc)
        return exited

    def _retire(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.stdin is not None and not proc.stdin.closed:
            with contextlib.suppress(OSError):
                proc.stdin.close()
        with self._lock:
            if proc.stdout is not None:
                self._read(proc.stdout)
                proc.stdout.close()
            now, before = self._current, self._before
            self._before = FeederStats(before.written + now.written,
                                       before.rejected + now.rejected, 0, now.last_error,
                                       now.last_write or before.last_write)
            self._current = FeederStats()
            self._buffer = b""
            if self._proc is proc:
                self._proc = None

    def _read(self, pipe: IO[bytes]) -> None:
        """Take what the feeder wrote; keep its newest complete line (lock held)."""
        if pipe.closed:
            return
        while True:
            try:
                data = os.read(pipe.fileno(), 1 << 16)
            except (BlockingIOError, OSError):
                break
            if not data:
                break
            self._buffer += data
        end = self._buffer.rfind(b"\n")
        if end < 0:
            return
        start = self._buffer.rfind(b"\n", 0, end) + 1
        line, self._buffer = self._buffer[start:end], self._buffer[end + 1:]
        with contextlib.suppress(ValueError, TypeError):
            self._current = FeederStats(**orjson.loads(line))


# -- the feeder process -------------------------------------------------------------------


def main() -> int:
    """Entry point of ``python -m pdp.decision_log`` (the configuration on stdin)."""
    stdin = sys.stdin.buffer
    line = stdin.readline()
    if not line:
        return 0
    config = FeederConfig(**orjson.loads(line))
    root = logging.getLogger()
    root.addHandler(make_handler(config.log_format))
    root.setLevel(config.log_level.upper())
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    lowest_priority()  # SQL ingest yields a busy core entirely; the segments hold the lag
    out = sys.stdout.buffer.fileno()
    os.set_blocking(out, False)
    db = open_database(config.url, busy_timeout=1.0, keep_open=True)
    ingester = Ingester(db, Path(config.spool_dir),
                        retention=timedelta(days=config.retention_days),
                        purge_interval=config.purge_interval, report=_Reporter(out))
    try:
        while not stop.is_set():
            ok = ingester.run_once()
            if ok:
                ingester.purge_if_due()
            if _parent_gone(stdin, config.flush_interval if ok else config.retry_interval):
                break
        give_up_at = time.monotonic() + config.drain_timeout
        while not ingester.run_once(wait=True) and time.monotonic() < give_up_at:
            time.sleep(min(config.retry_interval, 0.1))
    finally:
        db.dispose()
    return 0


def _parent_gone(stdin: IO[bytes], timeout: float) -> bool:
    """Wait up to ``timeout`` seconds; True at end of file on stdin (the parent is done)."""
    try:
        readable, _, _ = select.select([stdin], [], [], timeout)
    except InterruptedError:  # a signal: the loop checks it
        return False
    if not readable:
        return False
    fcntl.fcntl(stdin.fileno(), fcntl.F_SETFL, os.O_NONBLOCK)
    try:
        return os.read(stdin.fileno(), 1 << 12) == b""
    except BlockingIOError:
        return False


class _Reporter:
    """Writes the counters as one line when they changed, never blocking: a line shorter
    than the pipe's atomic size is written whole or not at all (then again after the next
    round)."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._sent = b""

    def __call__(self, ingester: Ingester) -> None:
        line = _counters(ingester)
        if line == self._sent:
            return
        try:
            os.write(self._fd, line)
        except OSError:
            return
        self._sent = line


def _counters(ingester: Ingester) -> bytes:
    error = ingester.last_error
    stats: dict[str, Any] = {"written": ingester.written, "rejected": ingester.rejected,
                             "waiting": ingester.waiting,
                             "last_error": None if error is None else error[:1000],
                             "last_write": ingester.last_write}
    return orjson.dumps(stats, option=orjson.OPT_APPEND_NEWLINE)

