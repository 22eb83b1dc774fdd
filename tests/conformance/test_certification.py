"""The AuthZEN 1.0 certification scenario (``certification/scenario.json``) against the
``policies/certification`` fixture, through the HTTP API.

The eight decision rules are checked one by one and as a batch; every check of the Basic,
Batch and Discovery levels is replayed with its own expectations; the Search-level checks run
once the search endpoints are mounted.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import pytest_asyncio

from pdp.http import create_app
from tests.conftest import POLICIES, make_service

SCENARIO_FILE = Path(__file__).resolve().parent / "certification" / "scenario.json"
SCENARIO: dict[str, Any] = json.loads(SCENARIO_FILE.read_text())
CHECKS: dict[str, dict[str, Any]] = {c["id"]: c for c in SCENARIO["checks"]}
RULES: dict[int, dict[str, Any]] = {r["rule"]: r for r in SCENARIO["decision_rules"]}
ENDPOINTS: dict[str, str] = SCENARIO["endpoints"]

PUBLIC_URL = "https://pdp.example.com"
APP = create_app(make_service(POLICIES / "certification", public_url=PUBLIC_URL))
ROUTE_PATHS = {getattr(route, "path", None) for route in APP.routes}
SEARCH_MOUNTED = ENDPOINTS["search_subject"] in ROUTE_PATHS
needs_search = pytest.mark.skipif(
    not SEARCH_MOUNTED, reason="the search endpoints (/access/v1/search/*) are not mounted yet")

JSON_TYPE = "application/json"
CONTEXT = {"time": "2025-06-27T18:03-07:00", "ip": "192.168.1.1"}

# Every key an expectation may carry; an unknown key means the scenario grew a check this
# module does not verify yet.
HANDLED_EXPECT_KEYS = {
    "status", "body", "decision", "decisions", "decisions_validated_at",
    "item_context_allowed_at", "evaluations_count", "each_has_boolean_decision",
    "decisions_validated", "response_headers", "same_decision_every_time", "content_type",
    "required_fields", "optional_fields", "validations", "example_body", "not_found_is_failure",
    "results_include", "result_keys", "result_type", "additional_results_allowed",
    "same_results_as", "results_is_array", "page_if_present", "page_next_token_if_present",
    "page", "page_next_token", "next_token_non_empty_if_more_results",
    "next_token_empty_if_no_more_results",
    # descriptive only
    "fixture_rules", "note", "search_requirement",
}


@pytest_asyncio.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=APP)
    async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as c:
        yield c


def _text(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _checks_of(*levels: str) -> list[Any]:
    return [pytest.param(c, id=c["id"]) for c in SCENARIO["checks"] if c["level"] in levels]


# -- the scenario file itself -------------------------------------------------------------


def test_the_scenario_has_eight_decision_rules_numbered_one_to_eight() -> None:
    assert sorted(RULES) == list(range(1, 9))
    assert all(isinstance(r["decision"], bool) for r in RULES.values())


def test_every_level_entry_names_checks_or_response_rules_that_exist() -> None:
    known = [c["section"] for c in SCENARIO["checks"]] + [
        r["section"] for r in SCENARIO["response_rules"]]
    for level, sections in SCENARIO["levels"].items():
        for section in sections:
            matching = [s for s in known if s == section or s.startswith(section + "-")]
            assert matching, f"{level}: nothing in the scenario for section {section}"


def test_every_check_belongs_to_a_known_level_and_has_only_verified_expectations() -> None:
    for check in SCENARIO["checks"]:
        assert check["level"] in SCENARIO["levels"], check["id"]
        assert set(check["expect"]) <= HANDLED_EXPECT_KEYS, check["id"]


def test_checks_that_cite_fixture_rules_expect_the_decisions_of_those_rules() -> None:
    cited = 0
    for check in SCENARIO["checks"]:
        rules = check["expect"].get("fixture_rules")
        body = check["expect"].get("body")
        if not rules or check["kind"] != "decision" or body is None:
            continue
        decisions = ([body["decision"]] if "decision" in body
                     else [e["decision"] for e in body["evaluations"]])
        assert decisions == [RULES[n]["decision"] for n in rules], check["id"]
        cited += 1
    assert cited >= 10


# -- the eight decision rules ---------------------------------------------------------------


def _rule_request(rule: dict[str, Any], ids: str) -> dict[str, Any]:
    """The rule as a complete request. Rules 5 and 6 name no ids: ``as_tested`` takes them
    from the first scenario check that exercises the rule, ``fresh`` invents unknown ones
    (the rules speak of *any* subject or resource with those properties)."""
    body = {k: json.loads(json.dumps(rule[k])) for k in ("subject", "action", "resource")}
    if ids == "as_tested" and "as_tested" in rule:
        source = CHECKS[rule["as_tested"][0]]["request"]
        for key in ("subject", "resource"):
            body[key].setdefault("id", source[key]["id"])
    body["subject"].setdefault("id", "harness-subject")
    body["resource"].setdefault("id", "harness-record")
    return body


RULE_CASES = [
    pytest.param(n, ids, with_context, id=f"rule{n}-{ids}-{'context' if with_context else 'bare'}")
    for n in sorted(RULES)
    for ids in (("as_tested", "fresh") if "as_tested" in RULES[n] else ("as_tested",))
    for with_context in (False, True)
]


@pytest.mark.asyncio
@pytest.mark.parametrize(("rule_number", "ids", "with_context"), RULE_CASES)
async def test_each_decision_rule_holds_through_the_evaluation_endpoint(
        client: httpx.AsyncClient, rule_number: int, ids: str, with_context: bool) -> None:
    rule = RULES[rule_number]
    body = _rule_request(rule, ids)
    if with_context:
        body["context"] = CONTEXT
    response = await client.post(ENDPOINTS["evaluation"], json=body)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(JSON_TYPE)
    assert response.json() == {"decision": rule["decision"]}


@pytest.mark.asyncio
@pytest.mark.parametrize("ids", ["as_tested", "fresh"])
async def test_the_eight_rules_as_one_batch_give_the_eight_decisions_in_order(
        client: httpx.AsyncClient, ids: str) -> None:
    items = [_rule_request(RULES[n], ids) for n in sorted(RULES)]
    response = await client.post(ENDPOINTS["evaluations"], json={"evaluations": items})
    assert response.status_code == 200
    body = response.json()
    assert "decision" not in body
    assert body["evaluations"] == [{"decision": RULES[n]["decision"]} for n in sorted(RULES)]


@pytest.mark.asyncio
async def test_the_eight_rules_reversed_with_a_default_context_keep_their_decisions(
        client: httpx.AsyncClient) -> None:
    order = sorted(RULES, reverse=True)
    items = [_rule_request(RULES[n], "as_tested") for n in order]
    response = await client.post(ENDPOINTS["evaluations"],
                                 json={"context": CONTEXT, "evaluations": items})
    assert response.status_code == 200
    assert [e["decision"] for e in response.json()["evaluations"]] == [
        RULES[n]["decision"] for n in order]


# -- replaying the checks -------------------------------------------------------------------


async def _send(client: httpx.AsyncClient, check: dict[str, Any],
                body: dict[str, Any] | None = None) -> list[httpx.Response]:
    """Send a check's request (or its probe) and return the response(s)."""
    probe = check.get("probe") or {}
    headers = {"Content-Type": probe.get("content_type", JSON_TYPE), **probe.get("headers", {})}
    if check["method"] == "GET":
        return [await client.get(check["endpoint"], headers=probe.get("headers", {}))]
    if body is not None:
        content = json.dumps(body).encode()
    elif check["request"] is not None:
        content = json.dumps(check["request"]).encode()
    elif "raw_body" in probe:
        content = probe["raw_body"].encode()
    else:
        content = json.dumps(CHECKS[probe["body_from"]]["request"]).encode()
    repeat = int(probe.get("repeat", 1))
    return [await client.post(check["endpoint"], content=content, headers=headers)
            for _ in range(repeat)]


def _verify_decision_response(check: dict[str, Any], response: httpx.Response) -> None:
    expect = check["expect"]
    assert response.headers["content-type"].startswith(JSON_TYPE)
    body = response.json()
    if "body" in expect:
        assert _text(body) == _text(expect["body"])
    if "decision" in expect:
        assert body["decision"] is expect["decision"]
    if "evaluations" not in body:
        # c-2-3-1 / c-2-3-2: a boolean decision, an optional object context
        assert isinstance(body["decision"], bool)
        assert isinstance(body.get("context", {}), dict)
        return
    # c-3-3: same cardinality and order, boolean decisions, no top-level decision
    evaluations = body["evaluations"]
    assert "decision" not in body
    assert isinstance(evaluations, list)
    request_items = (check["request"] or {}).get("evaluations")
    if request_items is not None:
        assert len(evaluations) == len(request_items)
    if "evaluations_count" in expect:
        assert len(evaluations) == expect["evaluations_count"]
    allowed_context = set(expect.get("item_context_allowed_at", []))
    for i, item in enumerate(evaluations):
        assert isinstance(item["decision"], bool)
        if "context" in item:
            assert i in allowed_context, f"item {i} has an unexpected context: {item}"
            assert isinstance(item["context"], dict)
    if "decisions" in expect:
        assert [e["decision"] for e in evaluations] == expect["decisions"]


@pytest.mark.asyncio
@pytest.mark.parametrize("check", _checks_of("basic-core", "basic-properties", "batch-core",
                                             "batch-properties"))
async def test_each_basic_and_batch_check_of_the_scenario_passes(
        client: httpx.AsyncClient, check: dict[str, Any]) -> None:
    expect = check["expect"]
    responses = await _send(client, check)
    for response in responses:
        assert response.status_code == expect["status"], response.text
        assert response.headers["content-type"].startswith(JSON_TYPE)
    if expect["status"] >= 400:
        body = responses[0].json()
        assert body["error"] and body["message"]  # 400 bodies carry an error message
        return
    for response in responses:
        _verify_decision_response(check, response)
    for name, value in expect.get("response_headers", {}).items():
        sent = check["probe"]["headers"][name]
        assert value == "<same value as the request header>"
        assert responses[0].headers[name] == sent
    if expect.get("same_decision_every_time"):
        assert len(responses) == check["probe"]["repeat"] >= 2
        assert len({r.text for r in responses}) == 1
        assert responses[0].json() == {"decision": True}


@pytest.mark.asyncio
async def test_a_batch_item_without_a_resource_is_a_deny_carrying_the_error(
        client: httpx.AsyncClient) -> None:
    response = (await _send(client, CHECKS["c-3-4-1"]))[0]
    assert response.status_code == 200
    first, second = response.json()["evaluations"]
    assert first == {"decision": True}
    assert second["decision"] is False
    error = second["context"]["error"]
    assert error["status"] == 400
    assert "resource" in error["message"]


@pytest.mark.asyncio
@pytest.mark.parametrize("check_id", ["c-3-2-1", "c-3-2-6"])
async def test_structure_only_batches_decide_the_fixture_item_correctly_too(
        client: httpx.AsyncClient, check_id: str) -> None:
    # Only the structure is certified, but the first item is fixture rule 1.
    response = (await _send(client, CHECKS[check_id]))[0]
    assert response.json()["evaluations"][0] == {"decision": True}


@pytest.mark.asyncio
async def test_a_batch_item_replaces_a_default_as_a_whole(client: httpx.AsyncClient) -> None:
    # c-3-2-7's second item names record-2 without the default's properties: alice
    # may not write it (rule 5), and the default's status "active" must not leak into it.
    check = CHECKS["c-3-2-7"]
    body = json.loads(json.dumps(check["request"]))
    body["evaluations"][1] = {"resource": {"type": "record", "id": "record-2"}}
    response = (await _send(client, check, body))[0]
    assert response.json()["evaluations"] == [{"decision": True}, {"decision": False}]


# -- discovery ------------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("check", _checks_of("discovery"))
async def test_the_discovery_check_passes(client: httpx.AsyncClient,
                                          check: dict[str, Any]) -> None:
    expect = check["expect"]
    response = (await _send(client, check))[0]
    assert response.status_code == expect["status"]
    assert response.headers["content-type"].startswith(expect["content_type"])
    doc = response.json()
    for name in expect["required_fields"]:
        assert name in doc
    assert set(doc) <= set(expect["required_fields"]) | set(expect["optional_fields"])
    assert doc["policy_decision_point"] == PUBLIC_URL
    for name, value in doc.items():
        if name.endswith("_endpoint"):
            assert value.startswith(PUBLIC_URL + "/"), (name, value)
            parts = urlsplit(value)
            assert parts.scheme == "https" and not parts.query and not parts.fragment
    assert all(v is not None for v in doc.values())
    if "capabilities" in doc:
        assert all(isinstance(c, str) for c in doc["capabilities"])
    if "signed_metadata" in doc:
        assert re.fullmatch(r"[\w-]+\.[\w-]+\.[\w-]+", doc["signed_metadata"])


@pytest.mark.asyncio
async def test_every_advertised_endpoint_is_served_at_its_default_path(
        client: httpx.AsyncClient) -> None:
    doc = (await client.get(ENDPOINTS["metadata"])).json()
    advertised = {name: urlsplit(url).path for name, url in doc.items()
                  if name.endswith("_endpoint")}
    assert advertised["access_evaluation_endpoint"] == ENDPOINTS["evaluation"]
    assert advertised["access_evaluations_endpoint"] == ENDPOINTS["evaluations"]
    for name, path in advertised.items():
        assert path in ROUTE_PATHS, name
    rule1 = _rule_request(RULES[1], "as_tested")
    response = await client.post(advertised["access_evaluation_endpoint"], json=rule1)
    assert response.json() == {"decision": True}


@pytest.mark.asyncio
async def test_the_search_endpoints_are_advertised_exactly_when_they_are_served(
        client: httpx.AsyncClient) -> None:
    doc = (await client.get(ENDPOINTS["metadata"])).json()
    for kind in ("subject", "resource", "action"):
        served = ENDPOINTS[f"search_{kind}"] in ROUTE_PATHS
        url = doc.get(f"search_{kind}_endpoint")
        assert (url is not None) is served, kind
        if served:
            assert url == PUBLIC_URL + ENDPOINTS[f"search_{kind}"]


@pytest.mark.asyncio
async def test_a_trailing_slash_on_the_public_url_does_not_double_the_slash() -> None:
    app = create_app(make_service(POLICIES / "certification", public_url=PUBLIC_URL + "/"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url=PUBLIC_URL) as c:
        doc = (await c.get(ENDPOINTS["metadata"])).json()
    assert doc["policy_decision_point"] == PUBLIC_URL
    assert doc["access_evaluation_endpoint"] == PUBLIC_URL + ENDPOINTS["evaluation"]


# -- search (runs once the search endpoints are mounted) -------------------------------------


def _result_key(result: dict[str, Any]) -> str:
    return _text(result)


async def _search_all(client: httpx.AsyncClient, endpoint: str,
                      request: dict[str, Any]) -> list[dict[str, Any]]:
    response = await client.post(endpoint, json=request)
    assert response.status_code == 200
    return list(response.json()["results"])


@pytest.mark.asyncio
@needs_search
@pytest.mark.parametrize("check", _checks_of("search-core", "search-properties"))
async def test_each_search_check_of_the_scenario_passes(client: httpx.AsyncClient,
                                                        check: dict[str, Any]) -> None:
    expect = check["expect"]
    if "placeholders" in check:
        await _follow_pages(client, check)
        return
    response = (await _send(client, check))[0]
    assert response.status_code == expect["status"], response.text
    assert response.headers["content-type"].startswith(JSON_TYPE)
    body = response.json()
    if expect["status"] >= 400:
        assert body["error"] and body["message"]
        return
    for key, value in expect.get("body", {}).items():
        assert _text(body[key]) == _text(value)  # an empty last page may come with it
    results = body["results"]
    assert isinstance(results, list)
    keys = expect.get("result_keys") or (
        ["name"] if check["endpoint"] == ENDPOINTS["search_action"] else ["type", "id"])
    for result in results:
        assert list(result) == keys, result  # exactly these keys, in this order
        assert all(isinstance(result[k], str) for k in keys)
        if "result_type" in expect:
            assert result["type"] == expect["result_type"]
    got = {_result_key(r) for r in results}
    for wanted in expect.get("results_include", []):
        assert _result_key(wanted) in got, wanted
    if "same_results_as" in expect:
        other = CHECKS[expect["same_results_as"]]
        assert got == {_result_key(r) for r in await _search_all(
            client, other["endpoint"], other["request"])}
    if "page" in body or expect.get("page_if_present"):
        page = body.get("page")
        if page is not None:
            assert isinstance(page, dict)
            assert isinstance(page["next_token"], str)


async def _follow_pages(client: httpx.AsyncClient, check: dict[str, Any]) -> None:
    """c-4-5-2: walk the pages a limit of one gives; together they are the full result."""
    first_request = {k: v for k, v in check["request"].items() if k != "page"}
    everything = await _search_all(client, check["endpoint"], first_request)
    request = {**first_request, "page": {"limit": 1}}
    collected: list[dict[str, Any]] = []
    for _ in range(len(everything) + 2):
        response = await client.post(check["endpoint"], json=request)
        assert response.status_code == 200
        body = response.json()
        collected.extend(body["results"])
        token = (body.get("page") or {}).get("next_token", "")
        assert isinstance(token, str)
        if token == "":
            break
        request = {**first_request, "page": {"token": token}}
    else:
        pytest.fail("pagination did not end with an empty next_token")
    assert sorted(map(_result_key, collected)) == sorted(map(_result_key, everything))
