"""The decision log writer: a bounded queue and one background thread that batches inserts.

The decision path pays one lock-protected ``deque.append`` of a small tuple (references to
the already parsed request and the decision); everything else (rows, personal-data handling,
request ids for requests that had none, SQL) happens on the writer thread.

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
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import orjson
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from pdp.authzen.model import Decision, EvaluationRequest
from pdp.decision_log.model import MIGRATIONS, TABLE
from pdp.entities.database import Database, describe_url, migrate, open_database, sqlite_url
from pdp.errors import PDPError, StoreUnavailable
from pdp.search.searcher import SearchResult
from pdp.settings import Settings

__all__ = ["DecisionLog", "DecisionLogStats", "PersonalData"]

log = logging.getLogger("pdp.decision_log")

PersonalData = Literal["full", "hashed", "omitted"]

# (endpoint, unix time, request id, payload, policy version, latency in seconds)
Entry = tuple[str, float, str | None, Any, str, float]

_TRANSIENT = (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError,
              sa_exc.DisconnectionError)


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
        self._queue: deque[tuple[Entry, int]] = deque()
        self._lock = threading.Lock()
        self._size = 0
        self._dropped = 0
        self._written = 0
        self._rejected = 0
        self._held: list[dict[str, Any]] = []
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
        return cls(open_database(url, busy_timeout=1.0),
                   personal_data=settings.decision_log_personal_data,
                   queue_size=settings.decision_log_queue,
                   retention_days=settings.decision_log_retention_days)

    @property
    def database(self) -> Database:
        return self._db

    # -- the decision path: enqueue only ------------------------------------------------------

    def evaluation(self, request_id: str | None, request: EvaluationRequest, decision: Decision,
                   policy_version: str, latency: float) -> None:
        self._put(("evaluation", time.time(), request_id, (request, decision), policy_version,
                   latency), 1)

    def evaluations(self, request_id: str | None,
                    items: Sequence[EvaluationRequest | PDPError], decisions: Sequence[Decision],
                    policy_version: str, latency: float) -> None:
        self._put(("evaluations", time.time(), request_id, (items, decisions), policy_version,
                   latency), max(1, len(decisions)))

    def search(self, request_id: str | None, result: SearchResult, latency: float) -> None:
        self._put(("search/" + result.request.kind.value, time.time(), request_id, result,
                   result.policy_version, latency), 1)

    def _put(self, entry: Entry, rows: int) -> None:
        with self._lock:
            if self._size + rows > self._max:
                self._dropped += rows
                return
            self._queue.append((entry, rows))
            self._size += rows
            wake = self._size >= self._batch
        if wake:
            self._wake.set()

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
        self._wake.set()
        while time.monotonic() < deadline:
            with self._lock:
                empty = not self._queue
            if empty and not self._held:
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

    def _take(self) -> list[dict[str, Any]]:
        entries: list[Entry] = []
        with self._lock:
            taken = 0
            while self._queue and taken < self._batch:
                entry, rows = self._queue.popleft()
                entries.append(entry)
                taken += rows
            self._size -= taken
        rows_out: list[dict[str, Any]] = []
        for entry in entries:
            try:
                rows_out.extend(self._rows(entry))
            except Exception:  # noqa: BLE001 - a record that cannot be formatted is skipped
                log.exception("decision log: cannot format a record")
                with self._lock:
                    self._rejected += 1
        return rows_out

    def _write(self) -> bool:
        """Insert the held rows; False if the database is unavailable (keep them, retry)."""
        rows = self._held
        try:
            self._ensure_schema()
            with self._db.write() as conn:
                conn.execute(sa.insert(TABLE), rows)
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
                    conn.execute(sa.insert(TABLE), [row])
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

    def _rows(self, entry: Entry) -> Iterator[dict[str, Any]]:
        endpoint, at, request_id, payload, version, latency = entry
        base = {"at": datetime.fromtimestamp(at, UTC),
                "request_id": _clean(request_id or uuid.uuid4().hex)[:200],
                "endpoint": endpoint, "policy_version": version,
                "latency_ms": round(latency * 1000, 3), "personal_data": self._mode}
        if endpoint == "evaluation":
            request, decision = payload
            yield {**base, **self._request(request), **_decision(decision), "item": None}
        elif endpoint == "evaluations":
            items, decisions = payload
            for i, decision in enumerate(decisions):
                item = items[i] if i < len(items) else None
                fields = self._request(item) if isinstance(item, EvaluationRequest) else \
                    _EMPTY_REQUEST
                yield {**base, **fields, **_decision(decision), "item": i}
        else:
            result: SearchResult = payload
            req = result.request
            yield {**base, "item": None,
                   "subject_type": _clean(req.subject.type), "subject_id": _opt(req.subject.id),
                   "action": None if req.action is None else _clean(req.action.name),
                   "resource_type": _clean(req.resource.type),
                   "resource_id": _opt(req.resource.id),
                   "decision": None, "outcome": None, "reasons": [],
                   "errors": [f"{result.errors} candidates failed to evaluate"]
                   if result.errors else [],
                   "result_count": len(result.results),
                   "context": self._personal(req.context),
                   "properties": self._properties(
                       req.subject.properties, req.resource.properties,
                       None if req.action is None else req.action.properties)}

    def _request(self, req: EvaluationRequest) -> dict[str, Any]:
        return {"subject_type": _clean(req.subject.type), "subject_id": _clean(req.subject.id),
                "action": _clean(req.action.name), "resource_type": _clean(req.resource.type),
                "resource_id": _clean(req.resource.id), "result_count": None,
                "context": self._personal(req.context),
                "properties": self._properties(req.subject.properties, req.resource.properties,
                                               req.action.properties)}

    def _properties(self, subject: Mapping[str, Any] | None, resource: Mapping[str, Any] | None,
                    action: Mapping[str, Any] | None) -> Any:
        found = {k: v for k, v in (("subject", subject), ("resource", resource),
                                   ("action", action)) if v}
        if not found or self._mode == "omitted":
            return None
        return {k: self._personal(v) for k, v in found.items()}

    def _personal(self, value: Any) -> Any:
        if value is None or self._mode == "omitted":
            return None
        text = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        if self._mode == "hashed":
            return "sha256:" + hashlib.sha256(text).hexdigest()
        if b"\\u0000" in text:  # PostgreSQL's JSON refuses NUL characters
            return orjson.loads(text.replace(b"\\u0000", b"\\ufffd"))
        return value


_EMPTY_REQUEST: dict[str, Any] = {
    "subject_type": None, "subject_id": None, "action": None, "resource_type": None,
    "resource_id": None, "result_count": None, "context": None, "properties": None}


def _decision(decision: Decision) -> dict[str, Any]:
    errors = list(decision.errors)
    if decision.error is not None:
        errors.append(str(decision.error.get("message", "invalid request")))
    return {"decision": decision.allowed, "outcome": decision.outcome,
            "reasons": [_clean(r) for r in decision.reasons],
            "errors": [_clean(e) for e in errors]}


def _clean(text: str) -> str:
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


def _opt(text: str) -> str | None:
    return _clean(text) if text else None


def _reason(exc: BaseException) -> str:
    detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return detail[0] if detail else type(exc).__name__
