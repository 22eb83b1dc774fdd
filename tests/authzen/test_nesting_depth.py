"""The nesting depth of a parsed body: equal to a plain reference walk for any JSON value,
also when read from the text, and a body is refused for nesting exactly when the reference
says it is too deep."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pdp.authzen import nesting_depth, parse_json_body
from pdp.authzen.body import _depth_with_stack as _reference_depth  # the former walk
from pdp.authzen.body import text_depth
from pdp.errors import NestingTooDeep

_json = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.text(alphabet="ab{}[]\"", max_size=3),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(alphabet="xyz", max_size=2), inner, max_size=3),
    max_leaves=40)


@settings(max_examples=400, deadline=None)
@given(value=_json, limit=st.integers(0, 12))
def test_depth_equals_the_reference_walk(value: Any, limit: int) -> None:
    assert nesting_depth(value, limit) == _reference_depth(value, limit)


# strings with brackets, blanks and separators, but nothing written with a backslash
_unescaped = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.text(alphabet="ab{}[] :,", max_size=4),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(alphabet="x{[ ]}:", max_size=2), inner, max_size=3),
    max_leaves=40)


@settings(max_examples=400, deadline=None)
@given(value=_unescaped, limit=st.integers(0, 12), indent=st.none() | st.integers(0, 2),
       compact=st.booleans())
def test_the_depth_read_from_the_text_equals_the_reference_walk(
        value: Any, limit: int, indent: int | None, compact: bool) -> None:
    text = json.dumps(value, indent=indent,
                      separators=(",", ":") if compact else None).encode()
    assert b"\\" not in text
    assert text_depth(text, limit) == _reference_depth(value, limit)


@settings(max_examples=300, deadline=None)
@given(value=_json | _unescaped, limit=st.integers(0, 12))
def test_a_body_is_refused_for_nesting_exactly_when_the_reference_says_too_deep(
        value: Any, limit: int) -> None:
    body = orjson.dumps(value)
    too_deep = _reference_depth(value, limit) > limit
    try:
        parse_json_body("application/json", body, max_bytes=1 << 20, max_depth=limit)
    except NestingTooDeep:
        assert too_deep
    else:
        assert not too_deep


@pytest.mark.parametrize("levels", [1, 5, 31, 32, 33, 200])
def test_a_chain_of_lists_has_its_length_as_depth_up_to_one_past_the_limit(levels: int) -> None:
    value: Any = 0
    for _ in range(levels):
        value = [value]
    assert nesting_depth(value, 32) == min(levels, 33)


def test_a_limit_beyond_the_interpreter_recursion_still_measures_deep_values() -> None:
    value: Any = 0
    for _ in range(1020):  # orjson parses up to 1024 levels; past Python's recursion limit
        value = [value]
    assert nesting_depth(value, 5000) == 1020
