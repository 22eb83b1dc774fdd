"""Reading an evaluation body in one step gives what its two steps give (reading the JSON
body, then parsing the request): on any text, the same request or the same error (class,
message, field). The texts are written here with repeated keys, blanks around colons,
``\\u`` escapes, quotes and ``":`` inside strings, and nesting near the limit."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pdp.authzen.body import parse_json_body
from pdp.authzen.evaluation import EvaluationReader, parse_evaluation, read_evaluation
from pdp.authzen.model import EvaluationRequest
from pdp.errors import DuplicateKey, PDPError

_text = st.sampled_from(["", "a", "user", 'x":y', 'q"', "é", "a b", "\\", ": "])
_scalar = st.none() | st.booleans() | st.integers(-3, 3) | _text
_value = st.recursive(_scalar, lambda inner: st.lists(inner, max_size=2)
                      | st.dictionaries(st.sampled_from(["k", "id", "a b", 'q"']), inner,
                                        max_size=2), max_leaves=6)
_entity = st.fixed_dictionaries(
    {"type": _text, "id": _text},
    optional={"properties": st.none() | st.dictionaries(_text, _value, max_size=3) | _scalar,
              "extra": _value}) | _value
_body = st.fixed_dictionaries(
    {"subject": _entity, "action": st.fixed_dictionaries(
        {"name": _text}, optional={"properties": st.none()
                                   | st.dictionaries(_text, _value, max_size=2)}) | _value,
     "resource": _entity},
    optional={"context": st.none() | st.dictionaries(_text, _value, max_size=3) | _scalar,
              "other": _value}) | _value


def _write(data: st.DataObject, value: Any) -> str:
    """JSON text of ``value``, written with drawn blanks, escapes and repeated keys."""
    blank = data.draw(st.sampled_from(["", " ", "\n", "\t "]))
    if isinstance(value, dict):
        items = [(_string(data, k), _write(data, v)) for k, v in value.items()]
        if items and data.draw(st.integers(0, 3)) == 0:  # a key written twice (two ways)
            key = data.draw(st.sampled_from(sorted(value)))
            items.insert(data.draw(st.integers(0, len(items))),
                         (_string(data, key), _write(data, 1)))
        return "{" + ",".join(f"{blank}{k}{blank}:{blank}{v}" for k, v in items) + "}"
    if isinstance(value, list):
        return "[" + ",".join(blank + _write(data, v) for v in value) + "]"
    if isinstance(value, str):
        return _string(data, value)
    return json.dumps(value)


def _string(data: st.DataObject, text: str) -> str:
    """A JSON string of ``text``, each character escaped as drawn (``\\u`` escapes too, of
    quotes among others: one key can then be spelled two ways)."""
    out = []
    for c in text:
        how = data.draw(st.integers(0, 3))
        if how == 0 or (c in '"\\' and how == 1) or c < " ":
            out.append(f"\\u{ord(c):04x}")
        elif c in '"\\':
            out.append("\\" + c)
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def _outcome(read: Any) -> Any:
    try:
        value = read()
    except PDPError as exc:
        return ("error", type(exc), exc.message, exc.field)
    return ("value", value)


@settings(max_examples=1000, deadline=None)
@given(data=st.data(), body=_body,
       content_type=st.sampled_from(["application/json", "application/json; charset=utf-8",
                                     "text/plain", None]),
       max_depth=st.sampled_from([1, 2, 3, 4, 5, 32]),
       max_bytes=st.sampled_from([40, 1 << 20]))
def test_an_evaluation_body_is_read_as_its_two_steps_read_it(
        data: st.DataObject, body: Any, content_type: str | None, max_depth: int,
        max_bytes: int) -> None:
    raw = _write(data, body).encode()
    if data.draw(st.integers(0, 19)) == 0:
        raw = raw[:data.draw(st.integers(0, len(raw)))]  # cut short: not JSON
    expected = _outcome(lambda: parse_evaluation(parse_json_body(
        content_type, raw, max_bytes=max_bytes, max_depth=max_depth)))
    assert _outcome(lambda: read_evaluation(
        content_type, raw, max_bytes=max_bytes, max_depth=max_depth)) == expected
    # a reader kept across bodies (as an endpoint keeps one) reads the same
    reader = _READERS.setdefault((max_bytes, max_depth), EvaluationReader(
        max_bytes=max_bytes, max_depth=max_depth))
    assert _outcome(lambda: reader(content_type, raw)) == expected


_READERS: dict[tuple[int, int], EvaluationReader] = {}


def test_a_reader_gives_one_object_per_entity_and_action_without_properties() -> None:
    reader = EvaluationReader(max_bytes=1 << 20, max_depth=32)

    def read(resource: str) -> EvaluationRequest:
        return reader("application/json", b'{"subject":{"type":"user","id":"a"},'
                      b'"action":{"name":"read"},"resource":' + resource.encode() + b"}")

    first, again = read('{"type":"doc","id":"d"}'), read('{"type":"doc","id":"d"}')
    assert first == again and first is not again
    assert again.subject is first.subject and again.resource is first.resource
    assert again.action is first.action
    owned = read('{"type":"doc","id":"d","properties":{"owner":"a"}}')
    assert owned.resource is not first.resource and owned.resource.properties == {"owner": "a"}
    assert read('{"type":"doc","id":"d"}').resource.properties is None


def test_a_repeated_key_in_a_common_body_is_refused_by_name() -> None:
    raw = (b'{"subject":{"type":"user","id":"a"},"action":{"name":"read"},'
           b'"resource":{"type":"doc","id":"d","properties":{"owner":"a", "owner":"b"}}}')
    with pytest.raises(DuplicateKey, match="'owner'"):
        read_evaluation("application/json", raw, max_bytes=1 << 20, max_depth=32)


def test_a_repeated_key_hidden_by_an_escaped_quote_is_still_refused() -> None:
    # the text's `":` count: one short where a string spells `":` as `\u0022:`, one over
    # for the repeated key: equal to what orjson writes, so only the `\u` escape tells
    raw = (b'{"subject":{"type":"user","id":"a"},"action":{"name":"read"},'
           b'"resource":{"type":"doc","id":"d","properties":{"note":"x\\u0022:y"}},'
           b'"context":{"ip":"1","ip":"2"}}')
    with pytest.raises(DuplicateKey, match="'ip'"):
        read_evaluation("application/json", raw, max_bytes=1 << 20, max_depth=32)


_HEAD = '{"subject":{"type":"user","id":"a"},"action":{"name":"read"},'
_DEEP = "[" * 40 + "]" * 40


@pytest.mark.parametrize(("raw", "max_depth"), [
    # a key repeated with a blank before its colon: the colons alone tell (no other colon)
    (_HEAD + '"resource":{"type":"doc","id":"d","properties":{"o":"a", "o" :"b"}}}', 32),
    # ...and with colons inside strings, the count without blanks tells
    (_HEAD + '"resource":{"type":"doc","id":"u:1","properties":{"o":"a:b","o" :"c"}}}', 32),
    # the dropped value of a repeated key nested past the limit
    (_HEAD + '"resource":{"type":"doc","id":"d","properties":' + _DEEP + ',"properties":{}}}',
     32),
    (_HEAD + '"resource":{"type":"doc","id":"d"},"context":' + _DEEP + ',"context":{}}', 32),
    # a field AuthZEN does not name, nested past the limit
    (_HEAD + '"resource":{"type":"doc","id":"d","extra":' + _DEEP + "}}", 32),
    (_HEAD + '"resource":{"type":"doc","id":"d"},"other":' + _DEEP + "}", 32),
    # flat, but three deep against a limit of two
    (_HEAD + '"resource":{"type":"doc","id":"d","properties":{"o":"a"}}}', 2),
    (_HEAD + '"resource":{"type":"doc","id":"d","properties":null}}', 2),
    # flat and within the limit, colons inside strings
    (_HEAD + '"resource":{"type":"doc","id":"urn:d:1","properties":{"at":"12:00"}},'
     '"context":{"ip":"::1"}}', 3),
])
def test_pinned_bodies_are_read_as_their_two_steps_read_them(raw: str, max_depth: int) -> None:
    body = raw.encode()
    expected = _outcome(lambda: parse_evaluation(parse_json_body(
        "application/json", body, max_bytes=1 << 20, max_depth=max_depth)))
    assert _outcome(lambda: read_evaluation(
        "application/json", body, max_bytes=1 << 20, max_depth=max_depth)) == expected
