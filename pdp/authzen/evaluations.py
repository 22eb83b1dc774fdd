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
from typing import Any

from pdp.authzen.evaluation import parse_action, parse_context, parse_entity, parse_evaluation
from pdp.authzen.model import Action, Decision, EvaluationRequest, action, evaluation_request
from pdp.errors import InvalidField, PDPError, RequestError, TooManyEvaluations

__all__ = ["Semantic", "EvaluationsRequest", "parse_evaluations", "apply_semantic",
           "item_error"]

_UNPARSED = object()
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


def parse_evaluations(body: Any, *, max_items: int = 1000) -> EvaluationsRequest:
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
    defaults = _Defaults(body)
    actions: dict[str, Action] = {}  # the batch's actions without properties, made once each
    items: list[EvaluationRequest | PDPError] = []
    for i, raw in enumerate(raw_items):
        if not isinstance(raw, dict):
            items.append(InvalidField(f"evaluations[{i}] must be an object",
                                      field=f"evaluations[{i}]"))
            continue
        # the parts in the order they are checked: the first bad one is the item's error
        try:
            subject = parse_entity(raw["subject"], "subject") if "subject" in raw \
                else defaults.part("subject")
            if "action" in raw:
                value = raw["action"]
                name = value.get("name") if type(value) is dict else None
                if type(name) is str and value.get("properties") is None:
                    act = actions.get(name)
                    if act is None:
                        act = actions[name] = action(name, None)
                else:
                    act = parse_action(value)
            else:
                act = defaults.part("action")
            items.append(evaluation_request(
                subject, act,
                parse_entity(raw["resource"], "resource") if "resource" in raw
                else defaults.part("resource"),
                parse_context(raw["context"]) if "context" in raw
                else defaults.part("context")))
        except RequestError as exc:
            items.append(exc)
    return EvaluationsRequest(tuple(items), semantic, single=False)


class _Defaults:
    """The batch's parts for an item without its own key: the batch's key parsed, once per
    batch (its error is the error of every item that takes it); a key the batch does not
    have either is parsed as null."""

    __slots__ = ("_body", "_parsed")

    def __init__(self, body: dict[str, Any]) -> None:
        self._body = body
        self._parsed: dict[str, Any] = {}  # key -> the parsed part, or its error

    def part(self, key: str) -> Any:
        parsed = self._parsed.get(key, _UNPARSED)
        if parsed is _UNPARSED:
            try:
                parsed = _PARTS[key](self._body.get(key))
            except RequestError as exc:
                parsed = exc
            self._parsed[key] = parsed
        if isinstance(parsed, RequestError):
            raise parsed.with_traceback(None)
        return parsed


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
