"""The decision log writer: a bounded queue and one background thread that batches inserts.

The decision path copies what a row needs into one flat tuple of strings and numbers (the
context and properties as compact JSON bytes, unless they are omitted) and appends it to a
lock-protected deque: no reference to the request's objects is kept, so the queue adds no work
for Python's garbage collector. Everything else (rows, digests of personal data, request ids
for requests that had none, SQL) happens on the writer thread.

Delivery. The writer takes up to ``batch_size`` queued decisions, formats them and inserts
them in one transaction. If the database cannot be reached (or is locked), the batch is kept
and retried every ``retry_interval`` seconds while new decisions keep queueing; nothing is lost
unless the queue overflows. The queue holds at most ``queue_size`` decisions; beyond that new
decisions are dropped and counted (``dropped`` in ``/status``, ``pdp_decision_log_dropped_total``
in ``/metrics``). A row the database refuses for its content is skipped and counted
(``rejected``) so that it can never block the log. Nothing here ever raises into a decision.

Retention. Every ``purge_interval`` seconds the writer deletes rows older than
``retention_days``.

Personal data. Contexts and subject/resource/action properties may hold personal data:
``full`` keeps them, ``hashed`` keeps a SHA-256 digest of their canonical JSON (equal values
stay recognisable, their content does not), ``omitted`` keeps nothing. Entity ids, action
names and decisions are always kept: they are what an audit queries.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import orjson
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection

from pdp.authzen.model import Decision, EvaluationRequest
from pdp.decision_log.model import MIGRATIONS, TABLE
from pdp.entities.database import Database, describe_url, migrate, open_database, sqlite_url
from pdp.errors import PDPError, StoreUnavailable
from pdp.search.searcher import SearchResult
from pdp.settings import Settings

__all__ = ["DecisionLog", "DecisionLogStats", "PersonalData"]

log = logging.getLogger("pdp.decision_log")

PersonalData = Literal["full", "hashed", "omitted"]

# (endpoint, unix time, request id, batch item, subject type, subject id, action,
#  resource type, resource id, decision, outcome, reasons, errors, policy version,
#  latency in seconds, result count, context as JSON, properties as (name, JSON) pairs)
Record = tuple[str, float, str | None, int | None, str | None, str | None, str | None,
               str | None, str | None, bool | None, str | None, tuple[str, ...],
               tuple[str, ...], str, float, int | None, bytes | None,
               tuple[tuple[str, bytes], ...] | None]
Ready = tuple[Any, ...]  # a record with its context and properties as JSON text

COLUMNS = ("at", "request_id", "endpoint", "item", "subject_type", "subject_id", "action",
           "resource_type", "resource_id", "decision", "outcome", "reasons", "errors",
           "policy_version", "latency_ms", "result_count", "context", "properties",
           "personal_data")
_TRANSIENT = (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError,
              sa_exc.DisconnectionError)


def _insert_statement(db: Database) -> str:
    """One INSERT for a whole batch: the records go to the database as one JSON array (a
    single parameter) and the database unpacks them, formats the time, rounds the latency and
    generates missing request ids itself. The writer thread thus does almost no per-row
    Python work and runs one statement per batch, so it hardly competes with the decision
    path for the interpreter lock. The first parameter is the personal-data mode."""
    columns = ", ".join(COLUMNS)
    if db.is_sqlite:
        def f(i: int) -> str:
            return f"json_extract(value, '$[{i}]')"

        at = (f"strftime('%Y-%m-%d %H:%M:%S', {f(1)}, 'unixepoch') || "
              f"printf('.%06d', CAST(({f(1)} - CAST({f(1)} AS INTEGER)) * 1000000 AS INTEGER))")
        values = [at, f"COALESCE(substr({f(2)}, 1, 200), lower(hex(randomblob(16))))",
                  f(0), f(3), f(4), f(5), f(6), f(7), f(8), f(9), f(10), f(11), f(12), f(13),
                  f"round({f(14)} * 1000, 3)", f(15), f(16), f(17), "?"]
        return (f"INSERT INTO {TABLE.name} ({columns}) SELECT {', '.join(values)} "
                f"FROM json_each(?) ORDER BY key")
    values = ["to_timestamp((e->>1)::float8)",
              "COALESCE(left(e->>2, 200), md5(random()::text || clock_timestamp()::text))",
              "e->>0", "(e->>3)::int", "e->>4", "e->>5", "e->>6", "e->>7", "e->>8",
              "(e->>9)::boolean", "e->>10", "e->11", "e->12", "e->>13",
              "round(((e->>14)::float8 * 1000)::numeric, 3)::float8", "(e->>15)::int",
              "(e->>16)::jsonb", "(e->>17)::jsonb", "%s"]
    return (f"INSERT INTO {TABLE.name} ({columns}) SELECT {', '.join(values)} "
            f"FROM jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS t(e, n) ORDER BY n")


@dataclass(frozen=True, slots=True)
class DecisionLogStats:
    queued: int
    dropped: int
    written: int
    rejected: int
    waiting: int  # formatted rows held for a retry
    last_error: str | None
    last_write: float | None  # unix time

    def to_dict(self) -> dict[str, Any]:
        return {
            "queued": self.queued, "dropped": self.dropped, "written": self.written,
            "rejected": self.rejected, "waiting_for_database": self.waiting,
            "last_error": self.last_error,
            "last_write": None if self.last_write is None else
            datetime.fromtimestamp(self.last_write, UTC).isoformat(),
        }


class DecisionLog:
    def __init__(self, db: Database, *, personal_data: PersonalData = "hashed",
                 queue_size: int = 100_000, retention_days: float = 30.0,
                 batch_size: int = 1000, flush_interval: float = 0.25,
                 retry_interval: float = 1.0, purge_interval: float = 600.0,
                 drain_timeout: float = 5.0) -> None:
        self._db = db
        self._mode: PersonalData = personal_data
        self._max = queue_size
        self._retention = timedelta(days=retention_days)
        self._batch = batch_size
        self._flush_interval = flush_interval
        self._retry_interval = retry_interval
        self._purge_interval = purge_interval
        self._drain_timeout = drain_timeout
        self._queue: deque[tuple[Record, ...]] = deque()
        self._lock = threading.Lock()
        self._size = 0
        self._accepted = 0  # rows ever queued: written + rejected + queued + held
        self._dropped = 0
        self._written = 0
        self._rejected = 0
        self._held: list[Ready] = []
        self._insert = _insert_statement(db)
        self._last_error: str | None = None
        self._last_write: float | None = None
        self._ready = False
        self._last_purge = float("-inf")
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> DecisionLog | None:
        """The configured log, or None when ``PDP_DECISION_LOG=off``."""
        if settings.decision_log == "off":
            return None
        url = settings.decision_log_url or sqlite_url(settings.data_dir / "decisions.db")
        return cls(open_database(url, busy_timeout=1.0, keep_open=True),
                   personal_data=settings.decision_log_personal_data,
                   queue_size=settings.decision_log_queue,
                   retention_days=settings.decision_log_retention_days)

    @property
    def database(self) -> Database:
        return self._db

    # -- the decision path: copy the fields into one flat tuple and enqueue it ----------------
    #
    # A record holds only strings, numbers, bytes and tuples of them, never a reference to the
    # request's objects: the queue then keeps no object graph alive (which would make the
    # cyclic garbage collector, not the log, the cost of a decision).

    def evaluation(self, request_id: str | None, request: EvaluationRequest, decision: Decision,
                   policy_version: str, latency: float) -> None:
        try:
            record = self._record("evaluation", time.time(), request_id, None, request,
                                  decision, policy_version, latency)
        except Exception:  # noqa: BLE001 - the log never fails a decision
            self._reject(1)
            return
        self._put((record,), 1)

    def evaluations(self, request_id: str | None,
                    items: Sequence[EvaluationRequest | PDPError], decisions: Sequence[Decision],
                    policy_version: str, latency: float) -> None:
        at = time.time()
        try:
            records = tuple(
                self._record("evaluations", at, request_id, i,
                             item if isinstance(item, EvaluationRequest) else None, decision,
                             policy_version, latency)
                for i, (item, decision) in enumerate(zip(items, decisions, strict=False)))
        except Exception:  # noqa: BLE001 - the log never fails a decision
            self._reject(len(decisions))
            return
        self._put(records, len(records))

    def search(self, request_id: str | None, result: SearchResult, latency: float) -> None:
        try:
            req = result.request
            action = req.action
            record: Record = (
                "search/" + req.kind.value, time.time(), request_id, None,
                req.subject.type, req.subject.id or None,
                None if action is None else action.name, req.resource.type,
                req.resource.id or None, None, None, (),
                (f"{result.errors} candidates failed to evaluate",) if result.errors else (),
                result.policy_version, latency, len(result.results), self._capture(req.context),
                self._capture_properties(req.subject.properties, req.resource.properties,
                                         None if action is None else action.properties))
        except Exception:  # noqa: BLE001 - the log never fails a decision
            self._reject(1)
            return
        self._put((record,), 1)

    def _record(self, endpoint: str, at: float, request_id: str | None, item: int | None,
                req: EvaluationRequest | None, decision: Decision, version: str,
                latency: float) -> Record:
        errors = decision.errors
        if decision.error is not None:
            errors = (*errors, str(decision.error.get("message", "invalid request")))
        if req is None:
            return (endpoint, at, request_id, item, None, None, None, None, None,
                    decision.allowed, decision.outcome, decision.reasons, errors, version,
                    latency, None, None, None)
        subject, action, resource = req.subject, req.action, req.resource
        return (endpoint, at, request_id, item, subject.type, subject.id, action.name,
                resource.type, resource.id, decision.allowed, decision.outcome,
                decision.reasons, errors, version, latency, None, self._capture(req.context),
                self._capture_properties(subject.properties, resource.properties,
                                         action.properties))

    def _capture(self, value: Any) -> bytes | None:
        if value is None or self._mode == "omitted":
            return None
        text = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        if b"\\u0000" in text:  # PostgreSQL's JSON refuses escaped NUL characters
            text = _json_no_nul(text.decode()).encode()
        return text

    def _capture_properties(self, subject: Mapping[str, Any] | None,
                            resource: Mapping[str, Any] | None,
                            action: Mapping[str, Any] | None,
                            ) -> tuple[tuple[str, bytes], ...] | None:
        if self._mode == "omitted" or not (subject or resource or action):
            return None
        return tuple((name, self._capture(value) or b"null")
                     for name, value in (("subject", subject), ("resource", resource),
                                         ("action", action)) if value)

    def _put(self, records: tuple[Record, ...], rows: int) -> None:
        with self._lock:
            if self._size + rows > self._max:
                self._dropped += rows
                return
            self._queue.append(records)
            before = self._size
            self._size = before + rows
            self._accepted += rows
        if before < self._batch <= before + rows:  # a full batch waits: wake the writer once
            self._wake.set()

    def _reject(self, rows: int) -> None:
        log.exception("decision log: a decision could not be recorded")
        with self._lock:
            self._rejected += rows

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="pdp-decision-log", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the writer after it has written what it can within ``drain_timeout``."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stopping.set()
            self._wake.set()
            thread.join(timeout=self._drain_timeout + 5)
        left = self.stats().queued + len(self._held)
        if left:
            log.error("decision log closed with %d decisions unwritten", left)
        self._db.dispose()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued so far is written (True) or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        with self._lock:
            target = self._accepted
        self._wake.set()
        while time.monotonic() < deadline:
            with self._lock:
                if self._written + self._rejected >= target:
                    return True
            time.sleep(0.01)
        return False

    def stats(self) -> DecisionLogStats:
        with self._lock:
            return DecisionLogStats(self._size, self._dropped, self._written, self._rejected,
                                    len(self._held), self._last_error, self._last_write)

    def status(self) -> dict[str, Any]:
        return {"enabled": True, "url": describe_url(self._db.url),
                "personal_data": self._mode, "queue_size": self._max,
                "retention_days": self._retention.total_seconds() / 86400,
                **self.stats().to_dict()}

    # -- the writer thread ----------------------------------------------------------------------

    def _run(self) -> None:
        give_up_at: float | None = None
        while True:
            if self._stopping.is_set() and give_up_at is None:
                give_up_at = time.monotonic() + self._drain_timeout
            if not self._held:
                self._held = self._take()
            if self._held:
                if self._write():
                    continue
                if give_up_at is None:
                    self._stopping.wait(self._retry_interval)
                elif time.monotonic() >= give_up_at:
                    return
                else:
                    time.sleep(min(self._retry_interval, 0.1))
                continue
            if give_up_at is not None:
                return
            self._purge_if_due()
            self._wake.wait(self._flush_interval)
            self._wake.clear()

    def _take(self) -> list[Ready]:
        entries: list[tuple[Record, ...]] = []
        with self._lock:
            taken = 0
            while self._queue and taken < self._batch:
                records = self._queue.popleft()
                entries.append(records)
                taken += len(records)
            self._size -= taken
        out: list[Ready] = []
        for records in entries:
            for record in records:
                if record[16] is None and record[17] is None:
                    out.append(record)  # nothing to format: the database does the rest
                    continue
                try:
                    out.append(self._personal(record))
                except Exception:  # noqa: BLE001 - a record that cannot be formatted is skipped
                    log.exception("decision log: cannot format a record")
                    with self._lock:
                        self._rejected += 1
        return out

    def _write(self) -> bool:
        """Insert the held rows; False if the database is unavailable (keep them, retry)."""
        rows = self._held
        try:
            self._ensure_schema()
            with self._db.write() as conn:
                self._insert_rows(conn, rows)
        except StoreUnavailable as exc:
            return self._failed(exc.message)
        except _TRANSIENT as exc:
            return self._failed(_reason(exc))
        except sa_exc.SQLAlchemyError as exc:
            log.warning("decision log: a batch was refused (%s); writing its rows one by one",
                        _reason(exc))
            return self._write_each()
        self._wrote(len(rows))
        return True

    def _write_each(self) -> bool:
        while self._held:
            row = self._held[0]
            try:
                with self._db.write() as conn:
                    self._insert_rows(conn, [row])
            except _TRANSIENT as exc:
                return self._failed(_reason(exc))
            except sa_exc.SQLAlchemyError as exc:
                log.error("decision log: dropping a row the database refuses: %s", _reason(exc))
                with self._lock:
                    self._rejected += 1
            else:
                self._wrote(1, clear=False)
            self._held.pop(0)
        return True

    def _wrote(self, count: int, clear: bool = True) -> None:
        if clear:
            self._held = []
        with self._lock:
            self._written += count
            self._last_write = time.time()
            if self._last_error is not None:
                log.warning("decision log: the database is reachable again")
            self._last_error = None

    def _failed(self, reason: str) -> bool:
        with self._lock:
            first = self._last_error is None
            self._last_error = reason
        if first:
            log.error("decision log: cannot write (%s); %d decisions wait for the database",
                      reason, len(self._held) + self._size)
        return False

    def _ensure_schema(self) -> None:
        if not self._ready:
            migrate(self._db, "decision_log", MIGRATIONS)
            self._ready = True

    def _purge_if_due(self) -> None:
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

    # -- formatting (writer thread) -------------------------------------------------------------

    def _insert_rows(self, conn: Connection, records: list[Ready]) -> None:
        batch = _json_no_nul(orjson.dumps(records).decode())  # SQLite text ends at a NUL
        conn.exec_driver_sql(self._insert, (self._mode, batch))

    def _personal(self, r: Record) -> Ready:
        """The captured context and properties as the JSON text the columns hold: as they
        are, or a digest of each."""
        props = r[17]
        properties = None if props is None else (
            "{" + ",".join(f'"{name}":{self._text(value)}' for name, value in props) + "}")
        return (*r[:16], None if r[16] is None else self._text(r[16]), properties)

    def _text(self, captured: bytes) -> str:
        if self._mode == "hashed":
            return '"sha256:' + hashlib.sha256(captured).hexdigest() + '"'
        return captured.decode()


_ESCAPED_NUL = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")


def _json_no_nul(text: str) -> str:
    """JSON text with every escaped NUL character replaced by U+FFFD (an escaped backslash
    followed by ``u0000`` is left alone)."""
    if "\\u0000" not in text:
        return text
    return _ESCAPED_NUL.sub(lambda m: m.group(1) + "\\ufffd", text)


def _reason(exc: BaseException) -> str:
    detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return detail[0] if detail else type(exc).__name__
