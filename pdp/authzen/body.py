"""Reading a JSON request body as AuthZEN 1.0 section 10 (transport) requires.

Framework-free: takes the content type and the raw bytes, returns the parsed value or raises
a :class:`~pdp.errors.RequestError` that names the problem and the limit.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import orjson

from pdp.errors import (
    BodyTooLarge,
    DuplicateKey,
    EmptyBody,
    MalformedJSON,
    NestingTooDeep,
    UnsupportedContentType,
)

__all__ = ["check_content_type", "load_json", "parse_json_body", "nesting_depth",
           "escapes_unicode", "keys_all_kept"]

_WHITESPACE = b" \t\r\n"
_RECURSIVE_LIMIT = 200  # deepest limit measured by recursion (Python's own limit is ~1000)
_AS_BRACES = bytes.maketrans(b"[]", b"{}")
_NOT_STRUCTURE = bytes(range(256)).translate(None, b'{}[]"')  # deleted by text_depth
_TEXT_DEPTH_LIMIT = 32  # the deepest limit parse_json_body measures with text_depth
_TEXT_DEPTH_BYTES = 65_536  # and the largest body


def load_json(body: bytes | str) -> Any:
    """Parse JSON text, refusing a duplicate key in any object (:class:`DuplicateKey`, naming
    it). Raises ``orjson.JSONDecodeError`` for text that is not JSON.

    The one JSON reader of request bodies (every endpoint, the gateway's JSON-RPC, ``pdp
    eval``). orjson parses, keeping the last of two equal keys; see :func:`refuse_duplicates`
    for how a repeated key is then found."""
    value = orjson.loads(body)
    refuse_duplicates(body.encode() if isinstance(body, str) else body, value)
    return value


def refuse_duplicates(raw: bytes, value: Any) -> None:
    """Raise :class:`DuplicateKey` if the JSON text ``raw`` (which parsed to ``value``)
    repeats a key in an object.

    Fast path, exact, for a text without ``\\u`` escapes (nearly every body). orjson keeps
    one member per key (the last). The text has one colon per member, outside strings, and
    every colon inside its strings written as a colon (only ``\\u003a`` spells one
    otherwise). orjson writing ``value`` back does the same for the members it kept, whose
    strings hold the same colons. So the text has as many colons as the rewrite when no
    member was dropped, and more when one was (its own colon at least). Otherwise (more
    colons, or ``\\u`` escapes, which can also spell one key two ways) the text is read
    again pair by pair, which names the key."""
    if not escapes_unicode(raw) and raw.count(b":") == _written_colons(value):
        return
    try:
        json.loads(raw, object_pairs_hook=_unique_pairs)
    except RecursionError:
        raise NestingTooDeep("JSON nesting is too deep", field="body") from None


def escapes_unicode(raw: bytes) -> bool:
    """Whether the JSON text ``raw`` may hold a ``\\u`` escape (then one key can be spelled
    two ways, and :func:`keys_all_kept` cannot tell). (``bytes.find``, not ``in``: ``in``
    first tries the needle as an integer, an exception made and cleared every time.)"""
    return raw.find(b"\\") >= 0 and raw.find(b"\\u") >= 0


def keys_all_kept(raw: bytes, written: int) -> bool:
    """Whether the JSON text ``raw``, without ``\\u`` escapes, has no more keys than the
    parsed value it gave, where ``written`` is at least that value's keys and at most the
    ``":`` orjson writes for it (one after each key it kept, plus one wherever a kept string
    holds a quote or its opening quote right before a colon). Each key in the text has its
    own colon, and each ``":`` inside a kept string is a colon in the text too: a text with
    exactly ``written`` colons has no more keys than were kept. Otherwise its ``":`` once
    blanks are taken out must be exactly ``written``: there is one after every key of the
    text, and at least as many inside the same strings as orjson writes (without ``\\u``
    a quote inside a string is written ``\\"`` in both, and removing blanks never removes a
    ``":``); so the count is at least ``written`` and the members dropped, and equal
    counts mean every key was kept. (Used where ``written`` is counted without writing
    the value: :class:`~pdp.authzen.evaluation.EvaluationReader`.)"""
    return raw.count(b":") == written \
        or raw.translate(None, _WHITESPACE).count(b'":') == written


def _written_colons(value: Any) -> int:
    """How many colons orjson writes for ``value``; -1 (so the exact path decides) for a
    value nested deeper than orjson writes (255 levels, under a raised PDP_MAX_DEPTH)."""
    try:
        return orjson.dumps(value).count(b":")
    except orjson.JSONEncodeError:
        return -1


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateKey(f"duplicate key {key!r} in a JSON object (a key may appear "
                                   "once per object)", field=key)
            seen.add(key)
    return out


def check_content_type(content_type: str | None) -> None:
    """Accept ``application/json`` with any parameters (``; charset=utf-8``)."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media != "application/json":
        raise UnsupportedContentType(
            f"Content-Type must be application/json, got {content_type or 'none'!r}",
            field="Content-Type")


def nesting_depth(value: Any, limit: int) -> int:
    """Depth of nested arrays/objects, stopping as soon as ``limit`` is exceeded (then the
    answer is ``limit + 1``).

    Recursive while the limit keeps it well inside the interpreter's recursion limit (every
    configured depth in practice), else a walk with an explicit stack."""
    if limit > _RECURSIVE_LIMIT:
        return _depth_with_stack(value, limit)
    if isinstance(value, dict):
        return _depth(value.values(), 1, limit)
    if isinstance(value, list):
        return _depth(value, 1, limit)
    return 0


def _depth_with_stack(value: Any, limit: int) -> int:
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Iterable[Any] = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > deepest:
            deepest = depth
            if deepest > limit:
                return deepest
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return deepest


def _depth(children: Iterable[Any], depth: int, limit: int) -> int:
    """Depth of a container at ``depth`` with these children, depth first, allocating
    nothing per leaf; the recursion never goes past ``limit + 1`` levels."""
    if depth > limit:
        return depth
    deepest = depth
    for child in children:
        if isinstance(child, dict):
            found = _depth(child.values(), depth + 1, limit)
        elif isinstance(child, list):
            found = _depth(child, depth + 1, limit)
        else:
            continue
        if found > deepest:
            deepest = found
            if deepest > limit:
                return deepest
    return deepest


def parse_json_body(content_type: str | None, body: bytes, *, max_bytes: int,
                    max_depth: int) -> Any:
    if content_type != "application/json":  # the usual header, exactly: nothing to normalise
        check_content_type(content_type)
    if len(body) > max_bytes:
        raise BodyTooLarge(f"request body is {len(body)} bytes; the limit is {max_bytes}",
                           field="body")
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if not body.strip():  # (blank text is never JSON: an empty body fails here)
            raise EmptyBody("request body is empty", field="body") from None
        reason = str(exc).lower()
        if "recursion" in reason or "depth limit" in reason:
            raise NestingTooDeep(f"JSON nesting exceeds the limit of {max_depth}",
                                 field="body") from None
        raise MalformedJSON(f"malformed JSON: {exc}", field="body") from None
    # Nesting needs an opening bracket per level: a body with few brackets (every ordinary
    # request) is within the limit without measuring it.
    if body.count(b"{") + body.count(b"[") > max_depth \
            and _body_depth(body, value, max_depth) > max_depth:
        raise NestingTooDeep(f"JSON nesting exceeds the limit of {max_depth}", field="body")
    refuse_duplicates(body, value)
    return value


def _body_depth(body: bytes, value: Any, limit: int) -> int:
    """:func:`nesting_depth` of ``value``, parsed from ``body``: read from the text when it
    has no backslash (a batch, say), is at most 64 KiB and the limit at most the default,
    else by walking the value. (The text takes a pass over what is left of it per level,
    where the walk stops at the first branch too deep: the bounds keep a body refused for
    depth cheap to refuse.)"""
    if limit > _TEXT_DEPTH_LIMIT or len(body) > _TEXT_DEPTH_BYTES or b"\\" in body:
        return nesting_depth(value, limit)
    return text_depth(body, limit)


def text_depth(text: bytes, limit: int) -> int:
    """The nesting depth of the JSON text ``text``, which must be valid and hold no
    backslash, stopping past ``limit`` as :func:`nesting_depth` does.

    Without a backslash no string holds an escaped quote, so the quotes alternately open and
    close strings, and the pieces of the text between them are alternately outside and
    inside strings: the brackets outside are the structure, a balanced sequence (arrays and
    objects alike, here all written ``{}``). Each pass deleting every ``{}`` removes the
    containers holding no container, one level of the deepest; the passes are the depth.

    Usually no string holds a bracket: each string is then an empty pair of quotes once the
    rest is deleted, and deleting every ``""`` leaves the structure alone. (A quote left over
    means some string holds a bracket: the pieces between quotes are then sorted out.)"""
    kept = text.translate(_AS_BRACES, _NOT_STRUCTURE)
    structure = kept.replace(b'""', b"")
    if structure.find(b'"') >= 0:
        structure = b"".join(kept.split(b'"')[::2])
    depth = 0
    while structure:
        depth += 1
        if depth > limit:
            return depth
        structure = structure.replace(b"{}", b"")
    return depth
