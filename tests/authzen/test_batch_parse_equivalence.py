"""A batch is parsed item by item as if each item's keys had replaced the defaults: the
parser agrees with that plain reference (merge, then parse) on any batch, errors included."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from pdp.authzen.evaluation import parse_evaluation
from pdp.authzen.evaluations import parse_evaluations
from pdp.authzen.model import Entity, EvaluationRequest
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


@settings(max_examples=300, deadline=None)
@given(batches=st.lists(st.tuples(_parts, st.lists(_item, min_size=1, max_size=5)),
                        min_size=1, max_size=3))
def test_entities_kept_from_batch_to_batch_change_no_item(
        batches: list[tuple[dict[str, Any], list[Any]]]) -> None:
    kept: dict[tuple[str, str], Entity] = {}
    for defaults, items in batches:
        body = {**defaults, "evaluations": items}
        assert _seen(parse_evaluations(body, kept=kept).items) == _reference_items(body)
    assert all(e.properties is None and key == (e.type, e.id) for key, e in kept.items())


def test_an_entity_asked_about_again_is_the_same_object_and_one_with_properties_is_not() -> None:
    kept: dict[tuple[str, str], Entity] = {}
    plain = {"type": "doc", "id": "1"}
    with_properties = {"type": "doc", "id": "1", "properties": {"p": 1}}
    body = {"subject": {"type": "user", "id": "u"}, "action": {"name": "read"},
            "evaluations": [{"resource": plain}, {"resource": with_properties}]}
    first = parse_evaluations(body, kept=kept).items
    again = parse_evaluations(body, kept=kept).items
    assert isinstance(first[0], EvaluationRequest) and isinstance(again[0], EvaluationRequest)
    assert again[0].resource is first[0].resource
    assert isinstance(first[1], EvaluationRequest) and isinstance(again[1], EvaluationRequest)
    assert again[1].resource is not first[1].resource
    assert again[1].resource.properties == {"p": 1}


def test_the_entities_kept_are_bounded() -> None:
    kept: dict[tuple[str, str], Entity] = {}
    for n in range(5):  # 5,000 entities: more than are kept
        parse_evaluations({"subject": {"type": "user", "id": "u"}, "action": {"name": "read"},
                           "evaluations": [{"resource": {"type": "doc", "id": f"{n}-{i}"}}
                                           for i in range(1000)]}, kept=kept)
    assert 0 < len(kept) <= 4096
