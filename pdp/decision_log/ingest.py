"""Feeding segment files into the SQL decision log, exactly once.

A round takes the data directory's ingest lock (``flock`` on ``ingest.lock``: with ``--workers
N`` one worker feeds at a time, any of them may), then for each segment, oldest first, inserts
its complete lines past the segment's checkpoint in one transaction per chunk that also moves
the checkpoint (``pdp_decision_log_segments``): whatever stops the process, a line is in the
table once or not yet. A sealed segment fed in full is deleted, then its checkpoint.

Lines go to the database as one JSON array (a single parameter) that the database unpacks, so
the feeding thread does almost no per-row Python work. If the database cannot be reached (or is
locked) the round stops and is retried; nothing is lost, the segments wait on disk. A chunk the
database refuses for its content is retried line by line and a refused line is skipped and
counted (``rejected``), so that it can never block the log.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection

from pdp.decision_log.model import CHECKPOINTS, MIGRATIONS, TABLE
from pdp.decision_log.segments import abandoned, complete_lines, is_sealed, segments
from pdp.entities.database import Database, migrate
from pdp.errors import StoreUnavailable

__all__ = ["Ingester", "LOCK_FILE", "catch_up"]

log = logging.getLogger("pdp.decision_log")

LOCK_FILE = "ingest.lock"
COLUMNS = ("at", "request_id", "endpoint", "item", "subject_type", "subject_id", "action",
           "resource_type", "resource_id", "decision", "outcome", "reasons", "errors",
           "policy_version", "latency_ms", "result_count", "context", "properties",
           "personal_data")
_TRANSIENT = (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError,
              sa_exc.DisconnectionError, StoreUnavailable)


def insert_statement(db: Database) -> str:
    """One INSERT for a chunk of lines given as one JSON array: the database unpacks the
    records, formats the time, rounds the latency and generates missing request ids itself."""
    columns = ", ".join(COLUMNS)
    if db.is_sqlite:
        def f(i: int) -> str:
            return f"json_extract(value, '$[{i}]')"

        def doc(i: int) -> str:  # a JSON document (a digest is a JSON string), null as NULL
            return f"NULLIF(value -> '$[{i}]', 'null')"

        at = (f"strftime('%Y-%m-%d %H:%M:%S', {f(1)}, 'unixepoch') || "
              f"printf('.%06d', CAST(({f(1)} - CAST({f(1)} AS INTEGER)) * 1000000 AS INTEGER))")
        values = [at, f"COALESCE(substr({f(2)}, 1, 200), lower(hex(randomblob(16))))",
                  f(0), f(3), f(4), f(5), f(6), f(7), f(8), f(9), f(10), f(11), f(12), f(13),
                  f"round({f(14)} * 1000, 3)", f(15), doc(16), doc(17), f(18)]
        return (f"INSERT INTO {TABLE.name} ({columns}) SELECT {', '.join(values)} "
                f"FROM json_each(?) ORDER BY key")
    values = ["to_timestamp((e->>1)::float8)",
              "COALESCE(left(e->>2, 200), md5(random()::text || clock_timestamp()::text))",
              "e->>0", "(e->>3)::int", "e->>4", "e->>5", "e->>6", "e->>7", "e->>8",
              "(e->>9)::boolean", "e->>10", "e->11", "e->12", "e->>13",
              "round(((e->>14)::float8 * 1000)::numeric, 3)::float8", "(e->>15)::int",
              "NULLIF(e->16, 'null'::jsonb)", "NULLIF(e->17, 'null'::jsonb)", "e->>18"]
    return (f"INSERT INTO {TABLE.name} ({columns}) SELECT {', '.join(values)} "
            f"FROM jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS t(e, n) ORDER BY n")


class Ingester:
    def __init__(self, db: Database, directory: Path, *, retention: timedelta,
                 purge_interval: float, chunk_bytes: int = 1 << 20,
                 report: Callable[[Ingester], None] | None = None) -> None:
        self._db = db
        self._dir = directory
        self._retention = retention
        self._purge_interval = purge_interval
        self._chunk = chunk_bytes
        self._report = report  # called after each round, the ingest lock still held
        self._insert = insert_statement(db)
        self._round = threading.Lock()  # one round at a time in this process
        self._ready = False
        self._last_purge = float("-inf")
        self.written = 0
        self.rejected = 0
        self.waiting = 0  # lines read and held for a retry after the last failed round
        self.last_error: str | None = None
        self.last_write: float | None = None

    def run_once(self, *, wait: bool = False) -> bool:
        """Feed every complete line of every segment; True when none is left unfed, False if
        another round (here or in another worker) is under way or the database failed."""
        if not self._round.acquire(blocking=wait, timeout=5 if wait else -1):
            return False
        try:
            lock = self._lock()
            if lock is None:
                return False
            try:
                done = self._feed_all()
                if self._report is not None:
                    self._report(self)
                return done
            finally:
                os.close(lock)  # releases the flock
        finally:
            self._round.release()

    def _lock(self) -> int | None:
        self._dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self._dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return fd

    def _feed_all(self) -> bool:
        try:
            self._ensure_schema()
            with self._db.read() as conn:
                done = {r.segment: int(r.consumed) for r in conn.execute(sa.select(CHECKPOINTS))}
            present = segments(self._dir)
            for path in present:
                sealed = is_sealed(path)  # before reading: a sealed segment no longer grows
                offset = done.get(path.name, 0)
                for chunk, end in complete_lines(path, offset, self._chunk):
                    self._feed(path.name, chunk, end, path.name in done)
                    done[path.name] = offset = end
                if sealed:
                    self._retire(path, offset, path.name in done)
            for path in abandoned(self._dir):
                path.unlink(missing_ok=True)
        except _TRANSIENT as exc:
            return self._failed(exc.message if isinstance(exc, StoreUnavailable)
                                else _reason(exc))
        self.waiting = 0
        if self.last_error is not None:
            log.warning("decision log: the database is reachable again")
            self.last_error = None
        return True

    def _feed(self, name: str, chunk: bytes, end: int, known: bool) -> None:
        self.waiting = chunk.count(b"\n")
        try:
            with self._db.write() as conn:
                conn.exec_driver_sql(self._insert, (_array(chunk),))
                _checkpoint(conn, name, end, known)
        except _TRANSIENT as exc:
            if not _malformed(exc):
                raise
            log.warning("decision log: %s holds a malformed record; writing its lines one by "
                        "one", name)
            self._feed_each(name, chunk, end - len(chunk), known)
            return
        except sa_exc.SQLAlchemyError as exc:
            log.warning("decision log: a chunk was refused (%s); writing its lines one by one",
                        _reason(exc))
            self._feed_each(name, chunk, end - len(chunk), known)
            return
        self._wrote(self.waiting)

    def _feed_each(self, name: str, chunk: bytes, offset: int, known: bool) -> None:
        for line in chunk.splitlines(keepends=True):
            offset += len(line)
            try:
                with self._db.write() as conn:
                    conn.exec_driver_sql(self._insert, (_array(line),))
                    _checkpoint(conn, name, offset, known)
            except (*_TRANSIENT, sa_exc.SQLAlchemyError) as exc:
                if isinstance(exc, _TRANSIENT) and not _malformed(exc):
                    raise
                log.error("decision log: dropping a record the database refuses: %s",
                          _reason(exc))
                with self._db.write() as conn:
                    _checkpoint(conn, name, offset, known)
                self.rejected += 1
            else:
                self._wrote(1)
            known = True

    def _retire(self, path: Path, consumed: int, known: bool) -> None:
        """Delete a sealed segment fed in full, then its checkpoint: stopped in between, the
        checkpoint of a file that is gone is left behind (harmless: names are never reused;
        and other data directories may share the database, so no other checkpoint is
        touched)."""
        size = path.stat().st_size
        if size > consumed:  # a torn last line (the machine stopped in the middle of a write)
            log.error("decision log: %s ends with %d bytes of an incomplete record; skipped",
                      path.name, size - consumed)
            self.rejected += 1
        path.unlink()
        if known:
            with self._db.write() as conn:
                conn.execute(sa.delete(CHECKPOINTS).where(CHECKPOINTS.c.segment == path.name))

    def _wrote(self, count: int) -> None:
        self.written += count
        self.last_write = time.time()

    def _failed(self, reason: str) -> bool:
        if self.last_error is None:
            log.error("decision log: cannot write (%s); decisions wait in %s", reason, self._dir)
        self.last_error = reason
        return False

    def _ensure_schema(self) -> None:
        if not self._ready:
            migrate(self._db, "decision_log", MIGRATIONS)
            self._ready = True

    # -- retention ------------------------------------------------------------------------

    def purge_if_due(self) -> None:
        now = time.monotonic()
        if now - self._last_purge < self._purge_interval:
            return
        self._last_purge = now
        try:
            removed = self.purge()
        except StoreUnavailable:
            return
        if removed:
            log.info("decision log: %d records older than %s removed", removed, self._retention)

    def purge(self, now: datetime | None = None) -> int:
        """Delete records older than the retention period; the number deleted."""
        cutoff = (now or datetime.now(UTC)) - self._retention
        try:
            self._ensure_schema()
            with self._db.write() as conn:
                return int(conn.execute(sa.delete(TABLE).where(TABLE.c.at < cutoff)).rowcount)
        except sa_exc.SQLAlchemyError as exc:
            raise StoreUnavailable(f"decision log purge failed: {_reason(exc)}") from None


def _checkpoint(conn: Connection, name: str, consumed: int, known: bool) -> None:
    if known:
        conn.execute(sa.update(CHECKPOINTS).where(CHECKPOINTS.c.segment == name)
                     .values(consumed=consumed))
    else:
        conn.execute(sa.insert(CHECKPOINTS).values(segment=name, consumed=consumed))


def _array(lines: bytes) -> str:
    """Complete JSON lines as one JSON array, escaped NUL characters replaced (SQLite text
    ends at a NUL; PostgreSQL's JSON refuses it)."""
    text = "[" + lines.rstrip(b"\n").replace(b"\n", b",").decode() + "]"
    return _json_no_nul(text)


_ESCAPED_NUL = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")


def _json_no_nul(text: str) -> str:
    """JSON text with every escaped NUL character replaced by U+FFFD (an escaped backslash
    followed by ``u0000`` is left alone)."""
    if "\\u0000" not in text:
        return text
    return _ESCAPED_NUL.sub(lambda m: m.group(1) + "\\ufffd", text)


def _malformed(exc: BaseException) -> bool:
    """The database refused a record's JSON (SQLite reports it as an operational error)."""
    return "malformed JSON" in str(getattr(exc, "orig", None) or exc)


def _reason(exc: BaseException) -> str:
    detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return detail[0] if detail else type(exc).__name__


def catch_up(db: Database, directory: Path, timeout: float = 5.0) -> bool:
    """Feed into ``db`` every complete line the segments in ``directory`` hold that it does not
    have yet, so that a reader sees every decision spooled so far even while the feeders wait
    for an idle core. True when nothing is left unfed; False if the database failed or another
    round (a feeder's) still held the ingest lock after ``timeout`` seconds."""
    if not directory.is_dir():
        return True
    ingester = Ingester(db, directory, retention=timedelta.max, purge_interval=float("inf"))
    give_up_at = time.monotonic() + timeout
    while not ingester.run_once(wait=True):
        if ingester.last_error is not None or time.monotonic() >= give_up_at:
            return False
        time.sleep(0.02)  # a feeder's round is under way: it ends within one chunk
    return True
