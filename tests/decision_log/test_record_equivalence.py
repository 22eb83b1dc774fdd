"""What the decision path queues for a decision is the line the former record builder wrote
(kept here as the reference, with the writer's own ``_personal`` it called), byte for byte,
in every personal-data mode: for any request, decision and batch (items that failed to parse
included)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pdp.authzen.model import Action, Decision, Entity, EvaluationRequest
from pdp.decision_log import DecisionLog
from pdp.decision_log.personal import redact
from pdp.entities.database import open_database, sqlite_url
from pdp.errors import InvalidField, PDPError

_AT = 1_700_000_000.25


def _reference_record(log: DecisionLog, endpoint: str, request_id: str | None, item: int | None,
                      req: EvaluationRequest | None, decision: Decision, version: str,
                      latency: float) -> tuple[Any, ...]:
    """The former record builder: every request through ``_personal`` (which it called)."""
    mode = log._mode
    errors = decision.errors
    if decision.error is not None:
        errors = (*errors, str(decision.error.get("message", "invalid request")))
    if req is None:
        return (endpoint, _AT, request_id, item, None, None, None, None, None,
                decision.allowed, decision.outcome, decision.reasons, errors, version,
                latency, None, None, None, mode)
    subject, action, resource = req.subject, req.action, req.resource
    if errors and mode == "omitted":
        errors = redact(errors, (req.context, subject.properties, resource.properties,
                                 action.properties))
    return (endpoint, _AT, request_id, item, subject.type, subject.id, action.name,
            resource.type, resource.id, decision.allowed, decision.outcome,
            decision.reasons, errors, version, latency, None,
            *log._personal(req.context, subject.properties, resource.properties,
                           action.properties), mode)


def _line(record: tuple[Any, ...]) -> bytes:
    return orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)


_text = st.sampled_from(["", "alice", "x y", "doc-1", "10.0.0.1"])
_props = st.none() | st.dictionaries(st.sampled_from(["ip", "role", "n"]),
                                     _text | st.integers(0, 3), max_size=2)
_entities = st.builds(Entity, _text, _text, _props)
_requests = st.builds(EvaluationRequest, _entities, st.builds(Action, _text, _props),
                      _entities, _props)
_decisions = st.builds(
    Decision, st.booleans(), st.sampled_from(["permit", "forbid", "no_permit", "error"]),
    st.lists(_text, max_size=2).map(tuple),
    st.lists(st.sampled_from(["bad ip 10.0.0.1", "alice: no such role", "x"]),
             max_size=2).map(tuple),
    st.none() | st.fixed_dictionaries({"status": st.just(400)},
                                      optional={"message": st.sampled_from(
                                          ["'subject.id' is required", "alice is unknown"])}))
_items = st.lists(st.tuples(_requests | st.just(None), _decisions), min_size=1, max_size=4)


@pytest.fixture(params=["full", "hashed", "omitted"])
def log(request: pytest.FixtureRequest, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> Iterator[DecisionLog]:
    monkeypatch.setattr("pdp.decision_log.writer.time.time", lambda: _AT)
    db = open_database(sqlite_url(tmp_path / "decisions.db"))
    decision_log = DecisionLog(db, personal_data=request.param, spool_dir=tmp_path / "spool")
    try:
        yield decision_log
    finally:
        db.dispose()


def _queued(log: DecisionLog) -> bytes:
    lines = b"".join(entry for _, entry in log._queue)
    log._queue.clear()
    return lines


_LOG_SETTINGS = settings(max_examples=300, deadline=None,
                         suppress_health_check=[HealthCheck.function_scoped_fixture])


@_LOG_SETTINGS
@given(request=_requests, decision=_decisions, request_id=st.none() | _text)
def test_an_evaluation_queues_the_reference_line(log: DecisionLog, request: EvaluationRequest,
                                                 decision: Decision,
                                                 request_id: str | None) -> None:
    log.evaluation(request_id, request, decision, "v1", 0.5)
    assert _queued(log) == _line(_reference_record(
        log, "evaluation", request_id, None, request, decision, "v1", 0.5))


@_LOG_SETTINGS
@given(items=_items, cut=st.integers(0, 2))
def test_a_batch_queues_the_reference_lines(log: DecisionLog,
                                            items: list[tuple[Any, Decision]],
                                            cut: int) -> None:
    parsed: list[EvaluationRequest | PDPError] = [
        InvalidField("bad", field="x") if req is None else req for req, _ in items]
    decisions = [d for _, d in items][:max(1, len(items) - cut)]  # a semantic cut it short
    log.evaluations("rid", parsed, decisions, "v2", 0.25)
    assert _queued(log) == b"".join(
        _line(_reference_record(log, "evaluations", "rid", i,
                                item if isinstance(item, EvaluationRequest) else None, d,
                                "v2", 0.25))
        for i, (item, d) in enumerate(zip(parsed, decisions, strict=False)))


@_LOG_SETTINGS
@given(batches=st.lists(_items, min_size=1, max_size=3))
def test_the_spool_thread_digests_exactly_the_lines_with_something_personal(
        log: DecisionLog, batches: list[list[tuple[Any, Decision]]]) -> None:
    if log._mode != "hashed":
        return
    for items in batches:
        requests = [r for r, _ in items if r is not None]
        if requests:
            log.evaluation("rid", requests[0], items[0][1], "v", 0.5)
        log.evaluations("rid", [InvalidField("bad", field="x") if r is None else r
                                for r, _ in items], [d for _, d in items], "v", 0.5)
    queued = list(log._queue)
    # the reference: every line through the digesting path, as before
    expected = [(rows, b"".join([log._hashed(line) for line in entry.splitlines()]))
                for rows, entry in queued]
    assert log._take() == expected
    assert all(b'"hashed"]' in line and b'{"ip"' not in line
               for _, entry in expected for line in entry.splitlines())
