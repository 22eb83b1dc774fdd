"""Cedar's semantics at the edges, each condition checked three ways: the outcome Cedar's
documentation gives, the native evaluator, and cedarpy."""

from __future__ import annotations

import json
from typing import Any

import cedarpy
import pytest

import pdp.cedar

ENTITIES: list[dict[str, Any]] = [
    {"uid": {"type": "User", "id": "alice"},
     "attrs": {"age": 30, "name": "Alice", "rec": {"a": {"b": 1}}, "tags": ["x", "y"],
               "boss": {"__entity": {"type": "User", "id": "bob"}},
               "ip": {"__extn": {"fn": "ip", "arg": "10.1.2.3"}},
               "plain": {"type": "User", "id": "bob"}},
     "parents": [{"type": "Group", "id": "staff"}], "tags": {"level": 3}},
    {"uid": {"type": "Group", "id": "staff"}, "attrs": {},
     "parents": [{"type": "Group", "id": "everyone"}]},
    {"uid": {"type": "Action", "id": "read"}, "attrs": {},
     "parents": [{"type": "Action", "id": "readOnly"}]},
    {"uid": {"type": "Doc", "id": "d"}, "attrs": {}, "parents": []},
]
REQUEST = {"principal": {"type": "User", "id": "alice"}, "action": {"type": "Action", "id": "read"},
           "resource": {"type": "Doc", "id": "d"},
           "context": {"n": 5, "s": "a*b", "when": {"__extn": {"fn": "datetime",
                                                              "arg": "2024-03-01T10:00:00Z"}}}}

# condition → True (applies), False (does not), None (errors)
CASES: list[tuple[str, bool | None]] = [
    # Long arithmetic: 64-bit overflow is an error, not a wrap
    ("9223372036854775807 + 1 > 0", None),
    ("-9223372036854775807 - 1 < 0", True),
    ("-9223372036854775807 - 2 < 0", None),
    ("4611686018427387904 * 2 > 0", None),
    ("-(-9223372036854775807 - 1) > 0", None),
    ("context.n * 3 == 15", True),
    # equality: never an error; no coercion between types; records and sets by value
    ('1 == "1"', False), ("1 == true", False), ("[1, true] == [true, 1]", True),
    ("[1] == [true]", False), ('{a: 1, b: [2]} == {b: [2], a: 1}', True),
    ('{a: 1} == {a: true}', False), ('decimal("1.0") == decimal("1.0000")', True),
    ('decimal("1.0") == 1', False), ('ip("10.0.0.1/24") == ip("10.0.0.0/24")', False),
    ('datetime("2024-01-01") == datetime("2024-01-01T00:00:00Z")', True),
    ('principal == User::"alice"', True), ("principal.plain == User::\"bob\"", False),
    ("principal.boss == User::\"bob\"", True),
    # comparison: Long, datetime, duration; anything else is an error
    ('"a" < "b"', None), ('decimal("1.0") < decimal("2.0")', None),
    ('duration("1h") < duration("61m")', True), ("1 < duration(\"1h\")", None),
    ('context.when > datetime("2024-02-29")', True),
    # decimal: 4 places, 64-bit range
    ('decimal("922337203685477.5807").greaterThan(decimal("0.0"))', True),
    ('decimal("922337203685477.5808").greaterThan(decimal("0.0"))', None),
    ('decimal("1.23456").lessThan(decimal("2.0"))', None),
    ('decimal("-0.5").lessThanOrEqual(decimal("-0.5"))', True),
    # ip
    ('ip("127.0.0.1").isLoopback()', True), ('ip("127.0.0.1/4").isLoopback()', False),
    ('ip("::1").isLoopback() && ip("::1").isIpv6()', True),
    ('ip("224.1.2.3").isMulticast()', True), ('ip("ff02::1").isMulticast()', True),
    ('principal.ip.isInRange(ip("10.0.0.0/8"))', True),
    ('ip("10.0.0.0/8").isInRange(ip("10.1.0.0/16"))', False),
    ('ip("10.0.0.1").isInRange(ip("::/0"))', False), ('ip("01.2.3.4").isIpv4()', None),
    ('ip("::ffff:1.2.3.4").isIpv6()', None), ('ip("10.0.0.0/33").isIpv4()', None),
    # datetime and duration
    ('datetime("2024-03-01T10:00:00+0100").toTime() == duration("9h")', True),
    ('datetime("1969-12-31T23:00:00Z").toDate() == datetime("1969-12-31")', True),
    ('datetime("1969-12-31T23:00:00Z").toTime() == duration("23h")', True),
    ('datetime("2024-01-01").offset(duration("1d")) == datetime("2024-01-02")', True),
    ('datetime("2024-01-02").durationSince(datetime("2024-01-01")).toHours() == 24', True),
    ('duration("-90m").toHours() == -1', True), ('duration("1d2h3m4s5ms").toMilliseconds() '
                                                 '== 93784005', True),
    ('datetime("2023-02-29") == datetime("2023-03-01")', None),
    ('datetime("9999-12-31").offset(duration("106751991167d")) > datetime("2024-01-01")',
     None),
    # like: `*` is a wildcard, `\\*` a literal star
    ('context.s like "a\\*b"', True), ('context.s like "a*"', True),
    ('"ab" like "a\\*b"', False), ('"xaxbx" like "*a*b*"', True), ('"" like "*"', True),
    ("context.n like \"5\"", None),
    # in: entities and sets of entities, through transitive ancestors
    ('principal in Group::"everyone"', True), ('principal in [Doc::"d", Group::"staff"]', True),
    ('principal in [Doc::"d", 1]', None), ('principal in principal', True),
    ('User::"ghost" in Group::"staff"', False), ('User::"ghost" in User::"ghost"', True),
    ('action in Action::"readOnly"', True), ('1 in [1]', None),
    # has: entities and records, nested paths; an unknown entity has nothing
    ("principal has age", True), ("principal has rec.a.b", True), ("principal has rec.a.c",
                                                                     False),
    ('User::"ghost" has age', False), ("context has n", True), ("1 has a", None),
    # attribute access: a missing attribute or entity is an error
    ("principal.nope == 1", None), ('User::"ghost".age == 1', None),
    ("resource.anything == 1", None), ("context.nope == 1", None),
    # tags
    ('principal.hasTag("level") && principal.getTag("level") == 3', True),
    ('principal.getTag("nope") == 3', None), ('User::"ghost".hasTag("level")', False),
    ('User::"ghost".getTag("level") == 3', None), ('principal.hasTag(1)', None),
    # is
    ("principal is User", True), ('principal is User in Group::"staff"', True),
    ('resource is User in Group::"staff"', False), ("context is User", None),
    # sets
    ('principal.tags.contains("x")', True), ('principal.tags.containsAll(["x", "y"])', True),
    ('principal.tags.containsAny(["z"])', False), ("[].isEmpty()", True),
    ("context.n.contains(1)", None), ("[1].containsAll(1)", None),
    # boolean operators: short-circuit, and type errors otherwise
    ("false && (1 + true)", False), ("true || principal.nope", True),
    ("true && 1", None), ("!1", None), ("if context.n > 1 then true else 1", True),
    ("if 1 then true else false", None),
]


@pytest.mark.parametrize(("condition", "expected"), CASES, ids=[c for c, _ in CASES])
def test_a_condition_evaluates_as_cedar_says(condition: str, expected: bool | None) -> None:
    text = f"permit(principal, action, resource) when {{ {condition} }};"
    answer = pdp.cedar.is_authorized(REQUEST, text, ENTITIES)
    assert answer["evaluator"] == "native"
    got = None if answer["errors"] else answer["decision"] == "allow"
    assert got is expected, answer
    reference = cedarpy.is_authorized(REQUEST, text, json.dumps(ENTITIES))
    assert (None if reference.diagnostics.errors else reference.allowed) is expected
