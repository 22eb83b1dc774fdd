"""The shared JSON reader finds a repeated key exactly as a pair-by-pair reading does, however
the text is spelled (escapes, blanks, colons and quotes inside strings, nesting)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pdp.authzen import load_json
from pdp.errors import DuplicateKey

KEYS = st.text(alphabet=st.sampled_from(['a', 'b', '"', "\\", ":", "/", " ", "é", "\u2028"]),
               max_size=3)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), KEYS)


def _members(draw: st.DrawFn, depth: int) -> str:
    pairs = draw(st.lists(st.tuples(KEYS, _value(depth)), max_size=4))
    sep = draw(st.sampled_from([":", " : ", ":\n", "\t:"]))
    ensure_ascii = draw(st.booleans())
    return "{" + ", ".join(json.dumps(k, ensure_ascii=ensure_ascii) + sep + v
                           for k, v in pairs) + "}"


def _value(depth: int) -> st.SearchStrategy[str]:
    scalar = SCALARS.map(json.dumps)
    if depth <= 0:
        return scalar

    @st.composite
    def nested(draw: st.DrawFn) -> str:
        if draw(st.booleans()):
            return _members(draw, depth - 1)
        return "[" + ",".join(draw(st.lists(_value(depth - 1), max_size=3))) + "]"

    return st.one_of(scalar, nested())


@st.composite
def documents(draw: st.DrawFn) -> str:
    return _members(draw, 2)


def _has_duplicates(text: str) -> bool:
    found = False

    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal found
        found = found or len({k for k, _ in pairs}) != len(pairs)
        return dict(pairs)

    json.loads(text, object_pairs_hook=hook)
    return found


@settings(max_examples=400, deadline=None, derandomize=True)
@given(text=documents())
def test_a_duplicate_key_is_found_exactly_when_one_is_written(text: str) -> None:
    expected = _has_duplicates(text)
    if expected:
        with pytest.raises(DuplicateKey):
            load_json(text.encode())
    else:
        assert load_json(text.encode()) == json.loads(text)


@pytest.mark.parametrize("text", [
    '{"a": 1, "\\u0061": 2}', '{"a/b": 1, "a\\/b": 2}', '{"x": {"k\\"": 1, "k\\"" : 2}}',
    '{"q": "\\":", "q": 1}', '{"a" :1,"a":2}'])
def test_keys_spelt_two_ways_are_duplicates(text: str) -> None:
    with pytest.raises(DuplicateKey):
        load_json(text)
