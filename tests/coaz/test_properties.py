"""Properties of the mapper that must hold for every input."""

from __future__ import annotations

import logging
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from jsonpath_ng.ext.parser import parse as jsonpath_parse

from pdp.coaz import Deny, Evaluate, MappingOptions, Pass, ToolCatalog, map_message
from pdp.coaz.sep import PathRef
from pdp.coaz.template import MISSING
from tests.coaz.spec_examples import COPY_OBJECT_TOOL, GET_CUSTOMER_TOOL, TRANSFER_FUNDS_TOOL, load

CLAIMS = {"sub": "alice@example.com", "client_id": "agent-app-1",
          "aud": "https://mcp.example.com"}
INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
SCALARS = (st.none() | st.booleans() | st.integers()
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12))
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=6), inner, max_size=4), max_leaves=12)
# What CEL can carry: 64-bit integers, and strings without NUL (see pdp.coaz.binding).
NO_NUL_TEXT = st.text(alphabet=st.characters(blacklist_characters="\x00",
                                             blacklist_categories=("Cs",)), max_size=12)
CEL_SAFE_JSON = st.recursive(
    st.none() | st.booleans() | INT64 | st.floats(allow_nan=False, allow_infinity=False)
    | NO_NUL_TEXT,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(NO_NUL_TEXT, inner, max_size=4), max_leaves=12)
CLAIM_NAMES = st.from_regex(r"c_[a-z0-9_]{0,8}", fullmatch=True)


def no_dollar_strings(value: Any) -> bool:
    if isinstance(value, str):
        return not value.startswith("$")
    if isinstance(value, list):
        return all(no_dollar_strings(v) for v in value)
    if isinstance(value, dict):
        return all(no_dollar_strings(v) for v in value.values())
    return True


def same_json(a: Any, b: Any) -> bool:
    """Equality that tells booleans from numbers and floats from integers."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_json(a[k], b[k]) for k in a)
    if isinstance(a, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return bool(a == b)


def binding_tool(context: Any, subject: Any = None) -> dict[str, Any]:
    evaluation: dict[str, Any] = {"action": {"name": "read"},
                                  "resource": {"type": "doc", "id": "d"}, "context": context}
    if subject is not None:
        evaluation["subject"] = subject
    return {"name": "t", "inputSchema": {
        "type": "object", "properties": {"who": {"type": "string"}},
        "x-authzen-mapping": {"evaluation": evaluation}}}


def sep_tool(context: dict[str, Any], subject: dict[str, Any]) -> dict[str, Any]:
    return {"name": "t", "coaz": True, "inputSchema": {
        "type": "object", "properties": {"id": {"type": "string"}, "x": {"type": "string"}},
        "x-coaz-mapping": {"subject": subject, "resource": {"type": "doc", "id": "$token.sub"},
                           "context": context}}}


def evaluate(definition: dict[str, Any], arguments: dict[str, Any],
             claims: dict[str, Any] = CLAIMS) -> Evaluate:
    catalog = ToolCatalog.from_tools_list([definition])
    assert not catalog.problems, catalog.problems
    outcome = map_message({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                           "params": {"name": "t", "arguments": arguments}},
                          claims, catalog, MappingOptions())
    assert isinstance(outcome, Evaluate), outcome
    return outcome


@given(JSON.filter(no_dollar_strings))
def test_binding_literals_survive_unchanged(literal: Any) -> None:
    context = evaluate(binding_tool({"lit": literal}), {}).body["context"]
    assert same_json(context["lit"], literal)


@given(JSON.filter(no_dollar_strings))
def test_sep_literals_survive_unchanged(literal: Any) -> None:
    body = evaluate(sep_tool({"lit": literal, "agent": "$token.client_id"},
                             {"type": "user", "id": "$token.sub"}), {}).body
    assert same_json(body["context"]["lit"], literal)


@given(st.text(max_size=20))
def test_a_double_dollar_escapes_to_one_literal_dollar(text: str) -> None:
    context = evaluate(binding_tool({"v": "$$" + text}), {}).body["context"]
    assert context["v"] == "$" + text


@given(st.dictionaries(CLAIM_NAMES, CEL_SAFE_JSON, max_size=4),
       st.lists(CLAIM_NAMES, min_size=1, max_size=4, unique=True))
def test_missing_optional_claims_drop_their_fields(present: dict[str, Any],
                                                   asked: list[str]) -> None:
    context = {name: f"$token.?{name}" for name in asked}
    result = evaluate(binding_tool(context), {}, claims={**CLAIMS, **present}).body["context"]
    assert set(result) == {name for name in asked if name in present}
    for name, value in result.items():
        assert same_json(value, present[name])


SEP_NON_TOKEN = st.one_of(st.sampled_from(["$properties.id", "$properties['x']", "$properties"]),
                          SCALARS.filter(no_dollar_strings))


@given(st.dictionaries(st.text(min_size=1, max_size=5), SEP_NON_TOKEN, max_size=3),
       SEP_NON_TOKEN, SEP_NON_TOKEN)
def test_the_sep_dialect_refuses_a_mapping_with_nothing_from_the_token(
        context: dict[str, Any], subject_type: Any, subject_id: Any) -> None:
    definition = sep_tool(context, {"type": subject_type, "id": subject_id})
    error = ToolCatalog.from_tools_list([definition]).errors["t"]
    assert error.field == "tools[0].inputSchema.x-coaz-mapping"


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(NO_NUL_TEXT.filter(bool) | st.just(CLAIMS["sub"]))
def test_a_subject_id_not_from_the_token_is_logged_as_a_warning(
        caplog: pytest.LogCaptureFixture, who: str) -> None:
    caplog.clear()
    definition = binding_tool({}, subject={"type": "identity", "id": "$params.arguments.who"})
    with caplog.at_level(logging.WARNING, logger="pdp.coaz"):
        outcome = evaluate(definition, {"who": who})
    warned = [r for r in caplog.records if "subject.id" in r.getMessage()]
    if who == CLAIMS["sub"]:
        assert not warned and outcome.warnings == ()
    else:
        assert len(warned) == 1 and warned[0].levelno == logging.WARNING
        assert len(outcome.warnings) == 1
    assert outcome.body["subject"] == {"type": "identity", "id": who}


PASS_THROUGH = st.one_of(st.just("ping"),
                         st.text(max_size=12).map(lambda s: "notifications/" + s))
METHODS = st.one_of(
    PASS_THROUGH,
    st.sampled_from(["initialize", "tools/list", "tools/call", "resources/read", "prompts/get",
                     "completion/complete", "logging/setLevel", "tasks/get", "tasks/cancel",
                     "resources/templates/list", "sampling/createMessage", "Ping",
                     "notifications", "notification/x"]),
    st.text(max_size=20),
)
TOOL_CALL_PARAMS = st.fixed_dictionaries(
    {"name": st.sampled_from(["get_customer", "copy_object", "transfer_funds", "unknown"])},
    optional={"arguments": st.dictionaries(st.sampled_from(
        ["id", "case", "source", "destination", "from_account", "to_account", "amount", "x"]),
        SCALARS, max_size=5)})
CATALOG = ToolCatalog.from_tools_list(
    [load(GET_CUSTOMER_TOOL), load(COPY_OBJECT_TOOL), load(TRANSFER_FUNDS_TOOL)])


@given(METHODS, st.one_of(st.none(), TOOL_CALL_PARAMS,
                          st.dictionaries(st.text(max_size=8), JSON, max_size=4)),
       st.dictionaries(st.sampled_from(["sub", "client_id", "aud", "act"]), SCALARS, max_size=4))
def test_an_outcome_is_pass_only_for_ping_and_notifications(
        method: str, params: dict[str, Any] | None, claims: dict[str, Any]) -> None:
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": 1, "method": method}
    if params is not None:
        message["params"] = params
    outcome = map_message(message, claims, CATALOG, MappingOptions())
    passes = method == "ping" or method.startswith("notifications/")
    assert isinstance(outcome, Pass) == passes
    assert isinstance(outcome, Pass | Evaluate | Deny)


@given(st.dictionaries(st.sampled_from(["a", "b", "c"]), JSON, max_size=3) | JSON,
       st.lists(st.one_of(st.sampled_from(["a", "b", "c"]), st.integers(-3, 3)), max_size=4))
def test_singular_references_select_exactly_what_jsonpath_ng_selects(
        data: Any, steps: list[str | int]) -> None:
    query = "$" + "".join(f"['{s}']" if isinstance(s, str) else f"[{s}]" for s in steps)
    expected = [m.value for m in jsonpath_parse(query).find(data)]
    ref = PathRef(source=query, root="token", location="x", required=False,
                  steps=tuple(steps), query=None)
    got = ref.resolve({}, data)
    assume(len(expected) <= 1)
    assert (got is MISSING) == (not expected)
    if expected:
        assert got is expected[0]
