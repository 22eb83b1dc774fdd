"""A batch is parsed item by item as if each item's keys had replaced the defaults: the
parser agrees with that plain reference (merge, then parse) on any batch, errors included."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from pdp.authzen.evaluation import parse_evaluation
from pdp.authzen.evaluations import parse_evaluations
from pdp.errors import PDPError, RequestError

_KEYS = ("subject", "action", "resource", "context")


def _reference_items(body: dict[str, Any]) -> list[Any]:
    defaults = {k: body[k] for k in _KEYS if k in body}
    out: list[Any] = []
    for raw in body["evaluations"]:
        if not isinstance(raw, dict):
            out.append(("InvalidField", "evaluations[...]"))
            continue
        merged = dict(defaults)
        merged.update((k, raw[k]) for k in _KEYS if k in raw)
        try:
            out.append(parse_evaluation(merged))
        except RequestError as exc:
            out.append((type(exc).__name__, exc.message, exc.field))
    return out


def _seen(items: tuple[Any, ...]) -> list[Any]:
    out: list[Any] = []
    for item in items:
        if isinstance(item, PDPError) and item.message.startswith("evaluations["):
            out.append(("InvalidField", "evaluations[...]"))
        elif isinstance(item, PDPError):
            out.append((type(item).__name__, item.message, item.field))
        else:
            out.append(item)
    return out


_scalar = st.none() | st.integers(0, 2) | st.sampled_from(["a", "b", ""])
_props = st.none() | _scalar | st.dictionaries(st.sampled_from(["p", "q"]), _scalar, max_size=2)
_entity = st.none() | _scalar | st.fixed_dictionaries(
    {}, optional={"type": _scalar, "id": _scalar, "properties": _props})
_action = st.none() | _scalar | st.fixed_dictionaries(
    {}, optional={"name": _scalar, "properties": _props})
_parts = st.fixed_dictionaries(
    {}, optional={"subject": _entity, "action": _action, "resource": _entity,
                  "context": _props})
_item = _parts | _scalar


@settings(max_examples=500, deadline=None)
@given(defaults=_parts, items=st.lists(_item, min_size=1, max_size=5))
def test_batch_items_equal_the_merge_then_parse_reference(
        defaults: dict[str, Any], items: list[Any]) -> None:
    body = {**defaults, "evaluations": items}
    assert _seen(parse_evaluations(body).items) == _reference_items(body)
