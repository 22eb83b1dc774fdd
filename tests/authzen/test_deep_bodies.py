"""A body nested deeper than orjson writes back (255 levels) but within a raised
``PDP_MAX_DEPTH`` is read like any other: accepted, or refused for a duplicate key, never
failing inside the duplicate check."""

from __future__ import annotations

import pytest

from pdp.authzen import parse_json_body
from pdp.errors import DuplicateKey


def _nested(levels: int, inner: bytes) -> bytes:
    return b'{"a":' * levels + inner + b"}" * levels


def test_a_body_nested_300_deep_is_read_when_the_limit_allows_it() -> None:
    value = parse_json_body("application/json", _nested(300, b"1"), max_bytes=1 << 20,
                            max_depth=600)
    for _ in range(300):
        value = value["a"]
    assert value == 1


def test_a_duplicate_key_300_levels_down_is_refused_naming_it() -> None:
    with pytest.raises(DuplicateKey) as refused:
        parse_json_body("application/json", _nested(300, b'{"k":1,"k":2}'),
                        max_bytes=1 << 20, max_depth=600)
    assert refused.value.field == "k"
