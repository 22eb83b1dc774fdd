"""What the spool thread writes to the segment file for a decision is the line the former
record builder wrote (kept here as the reference), byte for byte, in every personal-data
mode: for any request, decision and batch (items that failed to parse included). In
``hashed`` mode it is what the former spool thread wrote (kept here too: parse the line,
digest, serialise again), byte for byte, for any context and properties (nested, unicode, NaN,
beyond the memory's bounds, in batches mixing lines with and without them, searches too)."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import Enum
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
            *_reference_personal(log, req.context, subject.properties, resource.properties,
                                 action.properties), mode)


def _reference_personal(log: DecisionLog, context: Any, subject: Any, resource: Any,
                        action: Any) -> tuple[Any, Any]:
    """The former ``_personal``: the values as they are, before the spool thread's digests."""
    if log._mode == "omitted":
        return None, None
    if not (subject or resource or action):
        return context, None
    parts = {}
    if subject:
        parts["subject"] = subject
    if resource:
        parts["resource"] = resource
    if action:
        parts["action"] = action
    return context, parts


def _line(record: tuple[Any, ...]) -> bytes:
    return orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)


def _reference_hashed(log: DecisionLog, line: bytes) -> bytes:
    """The former spool thread's ``hashed`` line: parsed, its context and each properties
    object replaced by the digest of their canonical JSON, serialised again."""
    assert log._hasher is not None
    if line.endswith(b',null,null,"hashed"]'):
        return line + b"\n"
    r = orjson.loads(line)

    def digest(value: Any) -> str:
        assert log._hasher is not None
        return log._hasher.digest(orjson.dumps(value, option=orjson.OPT_SORT_KEYS))

    if r[16] is not None:
        r[16] = digest(r[16])
    if r[17] is not None:
        r[17] = {name: digest(v) for name, v in r[17].items()}
    return orjson.dumps(r, option=orjson.OPT_APPEND_NEWLINE)


def _on_disk(log: DecisionLog, lines: bytes) -> bytes:
    """What the former spool thread wrote for the queued ``lines``."""
    if log._mode != "hashed":
        return lines
    return b"".join(_reference_hashed(log, line) for line in lines.splitlines())


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


def _spooled(log: DecisionLog) -> bytes:
    """What the spool thread writes to the segment file for what is queued (taken)."""
    return b"".join(data for _, data in log._take())


_LOG_SETTINGS = settings(max_examples=300, deadline=None,
                         suppress_health_check=[HealthCheck.function_scoped_fixture])


@_LOG_SETTINGS
@given(request=_requests, decision=_decisions, request_id=st.none() | _text)
def test_an_evaluation_is_written_as_the_reference_line(
        log: DecisionLog, request: EvaluationRequest, decision: Decision,
        request_id: str | None) -> None:
    log.evaluation(request_id, request, decision, "v1", 0.5)
    reference = _line(_reference_record(
        log, "evaluation", request_id, None, request, decision, "v1", 0.5))
    assert _spooled(log) == _on_disk(log, reference)
    assert log.stats().rejected == 0


@_LOG_SETTINGS
@given(items=_items, cut=st.integers(0, 2))
def test_a_batch_is_written_as_the_reference_lines(
        log: DecisionLog, items: list[tuple[Any, Decision]], cut: int) -> None:
    parsed: list[EvaluationRequest | PDPError] = [
        InvalidField("bad", field="x") if req is None else req for req, _ in items]
    decisions = [d for _, d in items][:max(1, len(items) - cut)]  # a semantic cut it short
    log.evaluations("rid", parsed, decisions, "v2", 0.25)
    reference = b"".join(
        _line(_reference_record(log, "evaluations", "rid", i,
                                item if isinstance(item, EvaluationRequest) else None, d,
                                "v2", 0.25))
        for i, (item, d) in enumerate(zip(parsed, decisions, strict=False)))
    assert _spooled(log) == _on_disk(log, reference)
    assert log.stats().rejected == 0


@_LOG_SETTINGS
@given(batches=st.lists(_items, min_size=1, max_size=3))
def test_the_spool_thread_digests_exactly_the_lines_with_something_personal(
        log: DecisionLog, batches: list[list[tuple[Any, Decision]]]) -> None:
    if log._mode != "hashed":
        return
    expected = []
    for items in batches:
        requests = [r for r, _ in items if r is not None]
        if requests:
            log.evaluation("rid", requests[0], items[0][1], "v", 0.5)
            expected.append((1, _on_disk(log, _line(_reference_record(
                log, "evaluation", "rid", None, requests[0], items[0][1], "v", 0.5)))))
        parsed: list[EvaluationRequest | PDPError] = [
            InvalidField("bad", field="x") if r is None else r for r, _ in items]
        log.evaluations("rid", parsed, [d for _, d in items], "v", 0.5)
        expected.append((len(items), b"".join(_on_disk(log, _line(_reference_record(
            log, "evaluations", "rid", i, r if isinstance(r, EvaluationRequest) else None, d,
            "v", 0.5))) for i, (r, (_, d)) in enumerate(zip(parsed, items, strict=True)))))
    assert log._take() == expected
    assert all(b'"hashed"]' in line and b'{"ip"' not in line
               for _, entry in expected for line in entry.splitlines())


class _Kind(Enum):
    RESOURCE = "resource"


@dataclass(frozen=True)
class _SearchRequest:
    kind: Enum
    subject: Entity
    action: Action | None
    resource: Entity
    context: Any


@dataclass(frozen=True)
class _Searched:
    request: _SearchRequest
    results: Sequence[Any]
    errors: int
    policy_version: str


def _reference_search(log: DecisionLog, request_id: str, result: _Searched) -> bytes:
    req, action = result.request, result.request.action
    return _line((
        "search/" + req.kind.value, _AT, request_id, None, req.subject.type,
        req.subject.id or None, None if action is None else action.name, req.resource.type,
        req.resource.id or None, None, None, (),
        (f"{result.errors} candidates failed to evaluate",) if result.errors else (),
        result.policy_version, 0.5, len(result.results),
        *_reference_personal(log, req.context, req.subject.properties,
                             req.resource.properties,
                             None if action is None else action.properties), log._mode))


_scalars = (st.none() | st.booleans() | st.integers(-(2 ** 63), 2 ** 64 - 1) | st.floats()
            | st.text(max_size=6) | st.text(min_size=300, max_size=700))
_values = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=3)
                       | st.dictionaries(st.text(max_size=4), inner, max_size=3),
                       max_leaves=6)
_objects = st.dictionaries(st.text(max_size=4), _values, max_size=3)


@st.composite
def _traffic(draw: st.DrawFn) -> list[tuple[str, Any]]:
    """Evaluations, batches and searches whose contexts and properties come from a few
    values, so that tails recur (and are taken from memory) as well as vary."""
    # (a NaN: written as null, like None, but not None)
    pool = draw(st.lists(st.none() | st.just(math.nan) | _objects, min_size=1, max_size=4))
    values = st.sampled_from(pool)
    entities = st.builds(Entity, st.sampled_from(["user", "doc"]), _text, values)
    requests = st.builds(EvaluationRequest, entities, st.builds(Action, _text, values),
                         entities, values)
    searches = st.builds(_Searched, st.builds(_SearchRequest, st.just(_Kind.RESOURCE),
                                              entities, st.none() | st.builds(Action, _text,
                                                                              values),
                                              st.builds(Entity, _text, st.just(""), values),
                                              values),
                         st.lists(st.just({"id": "r"}), max_size=2), st.integers(0, 2),
                         st.just("v"))
    return draw(st.lists(st.tuples(st.just("evaluation"), requests)
                         | st.tuples(st.just("evaluations"),
                                     st.lists(requests | st.none(), min_size=1, max_size=4))
                         | st.tuples(st.just("search"), searches), min_size=1, max_size=8))


@pytest.fixture(params=[4096, 2], ids=["memory", "small-memory"])
def hashed_log(request: pytest.FixtureRequest, tmp_path: Path,
               monkeypatch: pytest.MonkeyPatch) -> Iterator[DecisionLog]:
    monkeypatch.setattr("pdp.decision_log.writer.time.time", lambda: _AT)
    monkeypatch.setattr("pdp.decision_log.writer._DIGESTS_KEPT", request.param)
    db = open_database(sqlite_url(tmp_path / "decisions.db"))
    try:
        yield DecisionLog(db, personal_data="hashed", spool_dir=tmp_path / "spool")
    finally:
        db.dispose()


_DECIDED = Decision(True, "permit", ("p",))


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(rounds=st.lists(_traffic(), min_size=1, max_size=3))
def test_the_spool_thread_writes_the_former_hashed_lines_byte_for_byte(
        hashed_log: DecisionLog, rounds: list[list[tuple[str, Any]]]) -> None:
    log = hashed_log
    for traffic in rounds:  # each round is one take (the memory carries over)
        reference = []
        for kind, what in traffic:
            if kind == "evaluation":
                log.evaluation("rid", what, _DECIDED, "v", 0.5)
                reference.append(_line(_reference_record(log, "evaluation", "rid", None, what,
                                                         _DECIDED, "v", 0.5)))
            elif kind == "evaluations":
                parsed: list[EvaluationRequest | PDPError] = [
                    InvalidField("bad", field="x") if r is None else r for r in what]
                log.evaluations("rid", parsed, [_DECIDED] * len(what), "v", 0.5)
                reference += [_line(_reference_record(log, "evaluations", "rid", i, r, _DECIDED,
                                                      "v", 0.5)) for i, r in enumerate(what)]
            else:
                log.search("rid", what, 0.5)
                reference.append(_reference_search(log, "rid", what))
        assert _spooled(log) == _on_disk(log, b"".join(reference))
        assert log.stats().rejected == 0
