"""The decision log: what the decision path hands over, and the two threads that take it to SQL.

The decision path (the serving thread) formats nothing: it appends one tuple to a
lock-protected deque, holding the time, the request id and the request and decision objects
themselves (frozen, never changed once parsed; a batch's lists are copied into tuples). That is
well under a microsecond; turning it into a JSON line is the spool thread's work.

The *spool* thread, every ``write_interval`` seconds, formats what is queued into compact JSON
lines (one ``orjson.dumps`` each; in ``hashed`` mode with the context and each properties
object replaced by the digest of their canonical JSON, so that no raw value ever reaches the
disk), appends them to this process's segment file in the data directory
(``pdp.decision_log.segments``) and ``fdatasync``s it every ``fsync_interval`` seconds. The
*ingest* thread, every ``flush_interval`` seconds, feeds the segments into the SQL table with a
checkpoint (``pdp.decision_log.ingest``): exactly once.

What survives what. SIGTERM (``close``): the queue is spooled, synced and fed; a record the
database cannot take yet stays in its segment and is fed at the next start. ``kill -9``:
what was appended to a segment survives (the kernel holds it); at most the decisions accepted
in the last ``write_interval`` are lost. A machine crash: at most the last ``fsync_interval``.

Bounds. The queue holds at most ``queue_size`` decisions; beyond that new decisions are
dropped and counted (``dropped`` in ``/status``, ``pdp_decision_log_dropped_total``). Nothing
here ever raises into a decision.

Retention. Every ``purge_interval`` seconds the ingest thread deletes rows older than
``retention_days``.

Personal data (``pdp.decision_log.personal``). Contexts and subject/resource/action properties
may hold personal data: ``full`` keeps them, ``hashed`` keeps an HMAC-SHA256 of their canonical
JSON under a secret key, ``omitted`` keeps nothing, and removes request values quoted in error
messages. Entity ids, action names and decisions are always kept: they are what an audit
queries.
"""

from __future__ import annotations

import logging
import secrets
import shutil
import tempfile
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import orjson

from pdp.authzen.model import Decision, EvaluationRequest
from pdp.caches import Memo
from pdp.decision_log.feeder import Feeder, FeederConfig, FeederStats
from pdp.decision_log.ingest import Ingester
from pdp.decision_log.personal import Hasher, load_key, redact
from pdp.decision_log.priority import lower_thread_priority
from pdp.decision_log.searched import Searched
from pdp.decision_log.segments import SegmentWriter, segments
from pdp.entities.database import Database, describe_url, open_database, sqlite_url
from pdp.errors import PDPError
from pdp.settings import Settings

__all__ = ["DecisionLog", "DecisionLogStats", "PersonalData", "SPOOL_DIR"]

log = logging.getLogger("pdp.decision_log")

PersonalData = Literal["full", "hashed", "omitted"]
Ingest = Literal["process", "thread"]
SPOOL_DIR = "decision-log"

# A line is the JSON array (endpoint, unix time, request id, batch item, subject type, subject
# id, action, resource type, resource id, decision, outcome, reasons, errors, policy version,
# latency in seconds, result count, context, properties, personal-data mode). The queue holds
# entries: (rows, endpoint, unix time, request id, what was asked, what was decided, policy
# version, latency): for an evaluation the request and its decision, for a batch the tuples of
# its items (requests, or the errors of items that failed to parse) and of its decisions, for a
# search its result (and None).
Record = tuple[Any, ...]
Entry = tuple[int, str, float, "str | None", Any, Any, str, float]
_LINE = orjson.OPT_APPEND_NEWLINE
_CANONICAL = orjson.OPT_SORT_KEYS
# Digests remembered by the spool thread (canonical JSON -> digest): at most this many, and
# only of values up to this size (about 1 MB at most).
_DIGESTS_KEPT = 4096
_DIGEST_KEPT_BYTES = 256
# The digested context and properties of a line, remembered by the spool thread by the values'
# JSON text: at most this many, and only for texts up to this size (about 4 MB at most).
_PERSONAL_KEPT = 4096
_PERSONAL_KEPT_BYTES = 512


@dataclass(frozen=True, slots=True)
class DecisionLogStats:
    queued: int  # accepted, not yet in a segment file
    dropped: int
    written: int  # fed into the database (by this process's ingest thread)
    rejected: int
    waiting: int  # records read from a segment and held for a retry
    last_error: str | None
    last_write: float | None  # unix time
    spooled: int = 0  # appended to a segment file by this process
    synced: int = 0  # of those, fsynced

    def to_dict(self) -> dict[str, Any]:
        return {
            "queued": self.queued, "dropped": self.dropped, "spooled": self.spooled,
            "synced": self.synced, "written": self.written, "rejected": self.rejected,
            "waiting_for_database": self.waiting, "last_error": self.last_error,
            "last_write": None if self.last_write is None else
            datetime.fromtimestamp(self.last_write, UTC).isoformat(),
        }


class DecisionLog:
    """``spool_dir`` holds the segment files (a temporary directory if None: then nothing
    outlives the process). ``hash_key`` keys ``hashed`` digests (a random key if None)."""

    def __init__(self, db: Database, *, personal_data: PersonalData = "hashed",
                 queue_size: int = 100_000, retention_days: float = 30.0,
                 batch_size: int = 1000, flush_interval: float = 0.25,
                 retry_interval: float = 1.0, purge_interval: float = 600.0,
                 drain_timeout: float = 5.0, spool_dir: Path | None = None,
                 hash_key: bytes | None = None, write_interval: float = 0.01,
                 fsync_interval: float = 0.2, ingest: Ingest = "thread",
                 log_format: str = "text", log_level: str = "INFO") -> None:
        self._db = db
        self._mode: PersonalData = personal_data
        self._omit = personal_data == "omitted"
        self._max = queue_size
        self._retention = timedelta(days=retention_days)
        self._batch = batch_size
        self._flush_interval = flush_interval
        self._retry_interval = retry_interval
        self._purge_interval = purge_interval
        self._drain_timeout = drain_timeout
        self._write_interval = write_interval
        self._fsync_interval = fsync_interval
        self._spool_dir = spool_dir
        self._ingest_mode: Ingest = ingest
        self._log_setup = (log_format, log_level)
        self._feeder: Feeder | None = None
        self._own_spool = spool_dir is None
        self._hasher = (Hasher(hash_key or secrets.token_bytes(32))
                        if personal_data == "hashed" else None)
        # used by the spool thread only
        self._digests: Memo[bytes, str] = Memo(_DIGESTS_KEPT)
        self._personal_digests: Memo[bytes, tuple[Any, Any]] = Memo(_PERSONAL_KEPT)
        self._queue: deque[Entry] = deque()
        self._lock = threading.Lock()
        self._size = 0  # rows accepted and not yet spooled (queued or being written)
        self._accepted = 0
        self._dropped = 0
        self._spooled = 0
        self._synced = 0
        self._lost = 0  # rows that could not be spooled
        self._spool_error: str | None = None
        self._ingester: Ingester | None = None
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._spooled_all = threading.Event()
        self._threads: list[threading.Thread] = []
        self._fed_by_feeders = FeederStats()  # what feeder processes that stopped wrote

    @classmethod
    def from_settings(cls, settings: Settings) -> DecisionLog | None:
        """The configured log, or None when ``PDP_DECISION_LOG=off``."""
        if settings.decision_log == "off":
            return None
        url = settings.decision_log_url or sqlite_url(settings.data_dir / "decisions.db")
        mode = settings.decision_log_personal_data
        secret = settings.decision_log_hash_key
        key = (load_key(None if secret is None else secret.get_secret_value(), settings.data_dir)
               if mode == "hashed" else None)
        return cls(open_database(url, busy_timeout=1.0, keep_open=True), personal_data=mode,
                   queue_size=settings.decision_log_queue,
                   retention_days=settings.decision_log_retention_days,
                   spool_dir=settings.data_dir / SPOOL_DIR, hash_key=key,
                   write_interval=settings.decision_log_write_interval,
                   fsync_interval=settings.decision_log_fsync_interval,
                   ingest=settings.decision_log_ingest, log_format=settings.log_format,
                   log_level=settings.log_level)

    @staticmethod
    def check_settings(settings: Settings) -> None:
        """Refuse unusable settings before serving (ConfigurationError); with ``hashed``, this
        loads the key, generating the key file once before any worker starts."""
        if settings.decision_log == "on" and settings.decision_log_personal_data == "hashed":
            secret = settings.decision_log_hash_key
            load_key(None if secret is None else secret.get_secret_value(), settings.data_dir)

    @property
    def database(self) -> Database:
        return self._db

    # -- the decision path ------------------------------------------------------------------

    def evaluation(self, request_id: str | None, request: EvaluationRequest, decision: Decision,
                   policy_version: str, latency: float) -> None:
        self._put((1, "evaluation", time.time(), request_id, request, decision, policy_version,
                   latency))

    def evaluations(self, request_id: str | None,
                    items: Sequence[EvaluationRequest | PDPError], decisions: Sequence[Decision],
                    policy_version: str, latency: float) -> None:
        """A batch's items and their decisions (as many lines as decisions: a semantic that
        stopped early decided fewer than its items)."""
        decided = tuple(decisions)
        self._put((min(len(items), len(decided)), "evaluations", time.time(), request_id,
                   tuple(items), decided, policy_version, latency))

    def search(self, request_id: str | None, result: Searched, latency: float) -> None:
        self._put((1, "search", time.time(), request_id, result, None, result.policy_version,
                   latency))

    def _put(self, entry: Entry) -> None:
        rows = entry[0]
        with self._lock:
            before = self._size
            if before + rows > self._max:
                self._dropped += rows
                return
            self._queue.append(entry)
            self._size = before + rows
            self._accepted += rows
        if before < self._batch <= before + rows:  # a full batch waits: wake the writer once
            self._wake.set()

    # -- formatting (the spool thread) ------------------------------------------------------

    def _lines(self, entry: Entry) -> bytes:
        """The JSON lines written for a queued ``entry``."""
        _, endpoint, at, request_id, what, decided, version, latency = entry
        if endpoint == "evaluation":
            return orjson.dumps(self._record(endpoint, at, request_id, None, what, decided,
                                             version, latency), option=_LINE)
        if endpoint == "evaluations":
            return b"".join([orjson.dumps(self._record(
                endpoint, at, request_id, i,
                item if isinstance(item, EvaluationRequest) else None, decision, version,
                latency), option=_LINE) for i, (item, decision) in enumerate(zip(
                    what, decided, strict=False))])
        return orjson.dumps(self._search_record(at, request_id, what, latency), option=_LINE)

    def _record(self, endpoint: str, at: float, request_id: str | None, item: int | None,
                req: EvaluationRequest | None, decision: Decision, version: str,
                latency: float) -> Record:
        errors = decision.errors
        if decision.error is not None:
            errors = (*errors, str(decision.error.get("message", "invalid request")))
        if req is None:
            return (endpoint, at, request_id, item, None, None, None, None, None,
                    decision.allowed, decision.outcome, decision.reasons, errors, version,
                    latency, None, None, None, self._mode)
        subject, action, resource = req.subject, req.action, req.resource
        if self._omit and errors:
            errors = redact(errors, (req.context, subject.properties, resource.properties,
                                     action.properties))
        context, properties = self._personal(req.context, subject.properties,
                                             resource.properties, action.properties)
        return (endpoint, at, request_id, item, subject.type, subject.id, action.name,
                resource.type, resource.id, decision.allowed, decision.outcome,
                decision.reasons, errors, version, latency, None, context, properties,
                self._mode)

    def _search_record(self, at: float, request_id: str | None, result: Searched,
                       latency: float) -> Record:
        req = result.request
        action = req.action
        return ("search/" + req.kind.value, at, request_id, None, req.subject.type,
                req.subject.id or None, None if action is None else action.name,
                req.resource.type, req.resource.id or None, None, None, (),
                (f"{result.errors} candidates failed to evaluate",) if result.errors else (),
                result.policy_version, latency, len(result.results),
                *self._personal(req.context, req.subject.properties, req.resource.properties,
                                None if action is None else action.properties), self._mode)

    def _personal(self, context: Any, subject: Mapping[str, Any] | None,
                  resource: Mapping[str, Any] | None, action: Mapping[str, Any] | None,
                  ) -> tuple[Any, Any]:
        """The context and properties as the line holds them: as they are (``full``),
        digested (``hashed``) or not at all (``omitted``)."""
        if self._omit:
            return None, None
        parts = None
        if subject or resource or action:
            parts = {}
            if subject:
                parts["subject"] = subject
            if resource:
                parts["resource"] = resource
            if action:
                parts["action"] = action
        if self._hasher is None:
            return context, parts
        # The values' JSON text (keys as they come) says what their digests are: a context and
        # properties seen before cost this text and a lookup.
        text = orjson.dumps((context, parts))
        found = self._personal_digests.get(text)
        if found is None:
            found = self._digested(context, parts)
            if len(text) <= _PERSONAL_KEPT_BYTES:
                self._personal_digests.keep(text, found)
        return found

    def _digested(self, context: Any, parts: dict[str, Any] | None) -> tuple[Any, Any]:
        """The context and each properties object replaced by the digest of their canonical
        JSON (a context written as null, a NaN, stays null)."""
        if context is not None:
            written = orjson.dumps(context, option=_CANONICAL)
            context = None if written == b"null" else self._digest(written)
        return context, (None if parts is None else {
            name: self._digest(orjson.dumps(v, option=_CANONICAL)) for name, v in parts.items()})

    def _digest(self, data: bytes) -> str:
        """The digest of a value's canonical JSON ``data``, remembered: the same contexts and
        properties (an empty context, a batch's shared subject) recur from decision to
        decision, and an HMAC costs more than the lookup."""
        hasher = self._hasher
        assert hasher is not None
        if len(data) > _DIGEST_KEPT_BYTES:
            return hasher.digest(data)
        found = self._digests.get(data)
        if found is None:
            found = self._digests.keep(data, hasher.digest(data))
        return found

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        if self._threads:
            return
        self._ingest()
        self._stopping.clear()
        self._spooled_all.clear()
        self._threads = [threading.Thread(target=self._spool_run,
                                          name="pdp-decision-log-spool", daemon=True)]
        if self._ingest_mode == "process":
            self._feeder = Feeder(self._feeder_config())
            self._feeder.start()
        else:
            self._threads.append(threading.Thread(target=self._ingest_run,
                                                  name="pdp-decision-log-ingest", daemon=True))
        for thread in self._threads:
            thread.start()

    def _feeder_config(self) -> FeederConfig:
        assert self._spool_dir is not None
        return FeederConfig(
            url=self._db.url, spool_dir=str(self._spool_dir),
            retention_days=self._retention.total_seconds() / 86400,
            purge_interval=self._purge_interval, flush_interval=self._flush_interval,
            retry_interval=self._retry_interval, drain_timeout=self._drain_timeout,
            log_format=self._log_setup[0],
            log_level=self._log_setup[1])

    def close(self) -> None:
        """Spool and sync what is queued, then feed the database for up to ``drain_timeout``
        (what it cannot take stays in the segment files for the next start)."""
        threads, self._threads = self._threads, []
        if threads:
            self._stopping.set()
            self._wake.set()
            for thread in threads:
                thread.join(timeout=self._drain_timeout + 5)
        feeder, self._feeder = self._feeder, None
        if feeder is not None:  # it feeds what the spool thread sealed, then exits
            if not feeder.stop(timeout=self._drain_timeout + 5) and self._ingester:
                self._ingester.run_once(wait=True)  # it was stuck: one round here
            self._fed_by_feeders = feeder.stats()
        unspooled = self.stats().queued
        if unspooled:
            log.error("decision log closed with %d decisions unwritten", unspooled)
        left = 0 if self._spool_dir is None else len(segments(self._spool_dir))
        if left and self._ingester is not None and self._ingester.last_error is not None:
            log.warning("decision log: %d segment files wait in %s for the database",
                        left, self._spool_dir)
        elif self._own_spool and self._spool_dir is not None and not left:
            shutil.rmtree(self._spool_dir, ignore_errors=True)
            self._spool_dir, self._ingester = None, None
        self._db.dispose()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything accepted so far is in the database (True) or ``timeout``
        passes (False)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            target = self._accepted
        self._wake.set()
        while True:
            with self._lock:
                spooled = self._spooled + self._lost >= target
            ingester = self._ingester
            if spooled and ingester is not None and ingester.run_once(wait=True):
                return True
            if time.monotonic() >= deadline:
                return False
            self._wake.set()
            time.sleep(0.005)

    def purge(self, now: datetime | None = None) -> int:
        """Delete records older than the retention period; the number deleted."""
        return self._ingest().purge(now)

    def _ingest(self) -> Ingester:
        if self._spool_dir is None:
            self._spool_dir = Path(tempfile.mkdtemp(prefix="pdp-decision-log-"))
        if self._ingester is None:
            self._ingester = Ingester(self._db, self._spool_dir, retention=self._retention,
                                      purge_interval=self._purge_interval)
        return self._ingester

    def stats(self) -> DecisionLogStats:
        ingester = self._ingester
        with self._lock:
            queued, dropped, spooled, synced = (self._size, self._dropped, self._spooled,
                                                self._synced)
            lost, spool_error = self._lost, self._spool_error
        feeder = self._feeder
        fed = self._fed_by_feeders if feeder is None else feeder.stats()
        if ingester is None:
            return DecisionLogStats(queued, dropped, fed.written, fed.rejected + lost,
                                    fed.waiting, spool_error or fed.last_error,
                                    fed.last_write, spooled, synced)
        last_write = max((t for t in (ingester.last_write, fed.last_write) if t is not None),
                         default=None)
        # the feeder process's error is the current one while it runs (this process feeds
        # only when asked to flush, and at the end)
        error = fed.last_error if feeder is not None else ingester.last_error
        return DecisionLogStats(queued, dropped, ingester.written + fed.written,
                                ingester.rejected + fed.rejected + lost,
                                max(ingester.waiting, fed.waiting), spool_error or error,
                                last_write, spooled, synced)

    def status(self) -> dict[str, Any]:
        return {"enabled": True, "url": describe_url(self._db.url),
                "personal_data": self._mode,
                **({"hash_key_id": self._hasher.key_id} if self._hasher else {}),
                "spool": None if self._spool_dir is None else str(self._spool_dir),
                "queue_size": self._max, "ingest": self._ingest_mode,
                **({"feeder_pid": self._feeder.pid} if self._feeder else {}),
                "retention_days": self._retention.total_seconds() / 86400,
                **self.stats().to_dict()}

    # -- the spool thread -------------------------------------------------------------------

    def _spool_run(self) -> None:
        assert self._spool_dir is not None
        writer = SegmentWriter(self._spool_dir)
        pending: list[tuple[int, bytes]] = []
        last_sync = last_check = time.monotonic()
        unsynced = 0
        try:
            while True:
                stopping = self._stopping.is_set()
                pending.extend(self._take())
                if pending:
                    unsynced += self._append(writer, pending)
                now = time.monotonic()
                if unsynced and (stopping or now - last_sync >= self._fsync_interval):
                    try:
                        writer.sync()
                    except OSError as exc:
                        self._spool_failed(exc)
                    else:
                        with self._lock:
                            self._synced += unsynced
                        unsynced = 0
                    last_sync = now
                if stopping and (not pending or self._spool_error is not None):
                    with self._lock:
                        empty = not self._queue
                    if empty or self._spool_error is not None:
                        return
                feeder = self._feeder
                if feeder is not None and now - last_check >= 1.0:
                    feeder.supervise()
                    last_check = now
                self._wake.wait(self._write_interval)
                self._wake.clear()
        finally:
            try:
                writer.close()
            except OSError as exc:
                self._spool_failed(exc)
            self._spooled_all.set()

    def _take(self) -> list[tuple[int, bytes]]:
        """What is queued, taken from the queue and formatted: (rows, lines) each. An entry
        that cannot be formatted is lost alone, logged and counted."""
        with self._lock:
            entries = list(self._queue)
            self._queue.clear()
        out: list[tuple[int, bytes]] = []
        for entry in entries:
            try:
                out.append((entry[0], self._lines(entry)))
            except Exception:  # noqa: BLE001 - a record that cannot be formatted is skipped
                log.exception("decision log: a decision could not be recorded")
                with self._lock:
                    self._size -= entry[0]
                    self._lost += entry[0]
        return out

    def _append(self, writer: SegmentWriter, pending: list[tuple[int, bytes]]) -> int:
        """Append the pending lines; the number of rows appended (0 and kept on failure)."""
        rows = sum(n for n, _ in pending)
        try:
            writer.append(b"".join([data for _, data in pending]))
        except OSError as exc:
            self._spool_failed(exc)
            return 0
        pending.clear()
        with self._lock:
            self._size -= rows
            self._spooled += rows
            if self._spool_error is not None:
                log.warning("decision log: segment files are writable again")
            self._spool_error = None
        return rows

    def _spool_failed(self, exc: OSError) -> None:
        with self._lock:
            first = self._spool_error is None
            self._spool_error = f"cannot write a segment file: {exc}"
        if first:
            log.error("decision log: %s; %d decisions wait in memory", exc, self._size)

    # -- the ingest thread --------------------------------------------------------------------

    def _ingest_run(self) -> None:
        ingester = self._ingester
        assert ingester is not None
        lower_thread_priority()
        while not self._spooled_all.is_set():
            ok = ingester.run_once()
            if ok:
                ingester.purge_if_due()
            self._spooled_all.wait(self._flush_interval if ok else self._retry_interval)
        self._drain()

    def _drain(self) -> None:
        """Feed what is left, for up to ``drain_timeout`` seconds."""
        ingester = self._ingester
        assert ingester is not None
        give_up_at = time.monotonic() + self._drain_timeout
        while not ingester.run_once(wait=True) and time.monotonic() < give_up_at:
            time.sleep(min(self._retry_interval, 0.1))
