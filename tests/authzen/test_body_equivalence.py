"""Reading a request body changes nothing by taking its shortcuts (the usual content type
compared at once, a blank body found only when it fails to parse, the depth of a body without
backslashes read from its text): on any content type and body, parse_json_body gives what the
plain reader it replaced gives (kept here as the reference), the same value or the same error
(class, message, field)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from pdp.authzen.body import check_content_type, nesting_depth, parse_json_body, refuse_duplicates
from pdp.errors import BodyTooLarge, EmptyBody, MalformedJSON, NestingTooDeep, PDPError


def _reference(content_type: str | None, body: bytes, *, max_bytes: int,
               max_depth: int) -> Any:
    check_content_type(content_type)
    if len(body) > max_bytes:
        raise BodyTooLarge(f"request body is {len(body)} bytes; the limit is {max_bytes}",
                           field="body")
    if not body.strip():
        raise EmptyBody("request body is empty", field="body")
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        reason = str(exc).lower()
        if "recursion" in reason or "depth limit" in reason:
            raise NestingTooDeep(f"JSON nesting exceeds the limit of {max_depth}",
                                 field="body") from None
        raise MalformedJSON(f"malformed JSON: {exc}", field="body") from None
    if body.count(b"{") + body.count(b"[") > max_depth \
            and nesting_depth(value, max_depth) > max_depth:
        raise NestingTooDeep(f"JSON nesting exceeds the limit of {max_depth}", field="body")
    refuse_duplicates(body, value)
    return value


def _outcome(read: Callable[[], Any]) -> Any:
    try:
        return ("value", read())
    except PDPError as exc:
        return ("error", type(exc), exc.message, exc.field)


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5)
    | st.text(alphabet='ab{}[]" :,\\é', max_size=4),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(alphabet="x{[ ]}:\"", max_size=2), inner, max_size=3),
    max_leaves=30)


@st.composite
def _texts(draw: st.DrawFn) -> bytes:
    value = draw(_json)
    spelling = draw(st.sampled_from(["orjson", "python", "indented", "ascii"]))
    if spelling == "orjson":
        text = orjson.dumps(value)
    else:
        text = json.dumps(value, indent=2 if spelling == "indented" else None,
                          ensure_ascii=spelling == "ascii").encode()
    edit = draw(st.sampled_from(["none", "blanks", "cut", "duplicate", "garbage"]))
    if edit == "blanks":
        text = draw(st.sampled_from([b" ", b"\n\t", b"\x0b", b"\x0c"])) + text + b"\r\n"
    elif edit == "cut" and text:
        text = text[:draw(st.integers(0, len(text) - 1))]
    elif edit == "duplicate" and text.startswith(b"{") and len(text) > 2:
        text = b'{"x": 1, "x": 2, ' + text[1:]
    elif edit == "garbage":
        text += draw(st.sampled_from([b"}", b"x", b",", b"\x00"]))
    return text


_bodies = _texts() | st.sampled_from(
    [b"", b" ", b"\t\r\n", b"\x0b", b"\x0c\x0c", b"[" * 40 + b"]" * 40, b"[" * 1100 + b"]" * 1100,
     b'{"a":' * 33 + b"1" + b"}" * 33]) | st.binary(max_size=12)
_content_types = st.sampled_from(
    [None, "", "application/json", "application/json; charset=utf-8", "Application/JSON",
     " application/json ", "text/plain", "application/jsonx", "application/json;"])


@settings(max_examples=2000, deadline=None)
@given(content_type=_content_types, body=_bodies, max_bytes=st.sampled_from([8, 1 << 20]),
       max_depth=st.integers(2, 40))
def test_a_body_is_read_as_the_reference_reads_it(content_type: str | None, body: bytes,
                                                  max_bytes: int, max_depth: int) -> None:
    assert _outcome(lambda: parse_json_body(content_type, body, max_bytes=max_bytes,
                                            max_depth=max_depth)) == \
        _outcome(lambda: _reference(content_type, body, max_bytes=max_bytes,
                                    max_depth=max_depth))
