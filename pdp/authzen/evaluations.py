"""Access Evaluations API (AuthZEN 1.0 section 7): batches, defaults and semantics.

Top-level ``subject``/``action``/``resource``/``context`` are defaults; an item's key replaces
the default key as a whole. Items are validated after defaults are applied and a bad item
becomes that item's error, never the whole batch's. ``evaluations`` absent or empty means a
single evaluation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import partial
from typing import Any, cast

from pdp.authzen.evaluation import (
    kept_entity,
    parse_action,
    parse_context,
    parse_entity,
    parse_evaluation,
)
from pdp.authzen.model import (
    Action,
    Decision,
    Entity,
    EvaluationRequest,
    action,
    evaluation_request,
)
from pdp.errors import InvalidField, PDPError, RequestError, TooManyEvaluations

__all__ = ["Semantic", "EvaluationsRequest", "parse_evaluations", "apply_semantic",
           "item_error"]

_ABSENT = object()  # an item without the key
# The parser of each part of an evaluation.
_PARTS: dict[str, Callable[[Any], Any]] = {
    "subject": partial(parse_entity, field="subject"),
    "action": parse_action,
    "resource": partial(parse_entity, field="resource"),
    "context": parse_context,
}


class Semantic(StrEnum):
    EXECUTE_ALL = "execute_all"
    DENY_ON_FIRST_DENY = "deny_on_first_deny"
    PERMIT_ON_FIRST_PERMIT = "permit_on_first_permit"


@dataclass(frozen=True, slots=True)
class EvaluationsRequest:
    """A parsed batch. ``single`` is set when the body is a plain evaluation."""

    items: tuple[EvaluationRequest | PDPError, ...]
    semantic: Semantic
    single: bool


def parse_evaluations(body: Any, *, max_items: int = 1000,
                      kept: dict[tuple[str, str], Entity] | None = None) -> EvaluationsRequest:
    """The batch ``body``. ``kept``: the subjects and resources without properties made
    before, reused (see :func:`~pdp.authzen.evaluation.kept_entity`; a caller parsing batch
    after batch keeps one)."""
    if not isinstance(body, dict):
        raise InvalidField("the request body must be a JSON object", field="$")
    semantic = _parse_semantic(body.get("options"))
    raw_items = body.get("evaluations")
    if raw_items is None or raw_items == []:
        return EvaluationsRequest((parse_evaluation(body),), semantic, single=True)
    if not isinstance(raw_items, list):
        raise InvalidField("'evaluations' must be an array", field="evaluations")
    if len(raw_items) > max_items:
        raise TooManyEvaluations(
            f"'evaluations' has {len(raw_items)} items; the limit is {max_items} "
            "(PDP_MAX_BATCH): split the batch", field="evaluations")
    # The batch's own parts, parsed once: each is the default of the items without the key
    # (its error, the error of each item that takes it).
    subject0, action0, resource0, context0 = (_default(key, body) for key in _PARTS)
    actions: dict[str, Action] = {}  # the batch's actions without properties, made once each
    if kept is None:
        kept = {}
    items: list[EvaluationRequest | PDPError] = []
    append = items.append
    for i, raw in enumerate(raw_items):
        if type(raw) is not dict:
            append(InvalidField(f"evaluations[{i}] must be an object",
                                field=f"evaluations[{i}]"))
            continue
        # the parts in the order they are checked: the first bad one is the item's error
        try:
            subject = _entity(raw, "subject", subject0, kept)
            value = raw.get("action", _ABSENT)
            if value is _ABSENT:
                if isinstance(action0, RequestError):
                    raise action0
                act = action0
            else:
                name = value.get("name") if type(value) is dict else None
                if type(name) is str and value.get("properties") is None:
                    act = actions.get(name)
                    if act is None:
                        act = actions[name] = action(name, None)
                else:
                    act = parse_action(value)
            resource = _entity(raw, "resource", resource0, kept)
            value = raw.get("context", _ABSENT)
            if value is _ABSENT:
                if isinstance(context0, RequestError):
                    raise context0
                context = context0
            elif value is None or type(value) is dict:
                context = value
            else:
                context = parse_context(value)  # (raises: not an object)
            append(evaluation_request(subject, act, resource, context))
        except RequestError as exc:
            append(exc.with_traceback(None))
    return EvaluationsRequest(tuple(items), semantic, single=False)


def _entity(raw: dict[str, Any], key: str, default: Any,
            kept: dict[tuple[str, str], Entity]) -> Entity:
    """An item's subject or resource (``key``): its own (one without properties is kept, see
    :func:`~pdp.authzen.evaluation.kept_entity`), else the batch's ``default`` (whose error
    it raises)."""
    value = raw.get(key, _ABSENT)
    if value is _ABSENT:
        if isinstance(default, RequestError):
            raise default
        return cast(Entity, default)
    if type(value) is dict:
        type_, id_ = value.get("type"), value.get("id")
        if type(type_) is str and type(id_) is str and value.get("properties") is None:
            return kept_entity(type_, id_, kept)
    return parse_entity(value, key)


def _default(key: str, body: dict[str, Any]) -> Any:
    """The batch's part ``key`` parsed (a key it does not have is parsed as null), or its
    error."""
    try:
        return _PARTS[key](body.get(key))
    except RequestError as exc:
        return exc


def _parse_semantic(options: Any) -> Semantic:
    if options is None:
        return Semantic.EXECUTE_ALL
    if not isinstance(options, dict):
        raise InvalidField("'options' must be an object", field="options")
    value = options.get("evaluations_semantic", Semantic.EXECUTE_ALL.value)
    try:
        return Semantic(value)
    except ValueError:
        allowed = ", ".join(s.value for s in Semantic)
        raise InvalidField(f"'options.evaluations_semantic' must be one of {allowed}",
                           field="options.evaluations_semantic") from None


def item_error(exc: PDPError) -> Decision:
    """A batch item that could not be evaluated: a deny carrying the error."""
    return Decision(False, "error", error={"status": exc.status, "message": exc.message})


def apply_semantic(decisions: Sequence[Decision], semantic: Semantic) -> list[Decision]:
    """Cut the decisions as the semantic says: the result ends with the first deny (permit)."""
    if semantic is Semantic.EXECUTE_ALL:
        return list(decisions)
    stop_on = semantic is Semantic.PERMIT_ON_FIRST_PERMIT
    out: list[Decision] = []
    for d in decisions:
        out.append(d)
        if d.allowed is stop_on:
            break
    return out
