"""Reading a JSON request body as AuthZEN 1.0 section 10 (transport) requires.

Framework-free: takes the content type and the raw bytes, returns the parsed value or raises
a :class:`~pdp.errors.RequestError` that names the problem and the limit.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from pdp.errors import (
    BodyTooLarge,
    EmptyBody,
    MalformedJSON,
    NestingTooDeep,
    UnsupportedContentType,
)

__all__ = ["check_content_type", "parse_json_body", "nesting_depth"]


def check_content_type(content_type: str | None) -> None:
    """Accept ``application/json`` with any parameters (``; charset=utf-8``)."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media != "application/json":
        raise UnsupportedContentType(
            f"Content-Type must be application/json, got {content_type or 'none'!r}",
            field="Content-Type")


def nesting_depth(value: Any, limit: int) -> int:
    """Depth of nested arrays/objects, stopping as soon as ``limit`` is exceeded."""
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


def parse_json_body(content_type: str | None, body: bytes, *, max_bytes: int,
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
    # Nesting needs an opening bracket per level: a body with few brackets (every ordinary
    # request) is within the limit without walking the parsed value.
    if body.count(b"{") + body.count(b"[") > max_depth \
            and nesting_depth(value, max_depth) > max_depth:
        raise NestingTooDeep(f"JSON nesting exceeds the limit of {max_depth}", field="body")
    return value
