"""Mutating a denied request never turns it into a permit.

Each canonical request below is denied by its policy set. Hypothesis rewrites it the ways a
careless client or an attacker would (number spellings, value types, duplicate keys, reserved
names, claimed properties, unicode look-alikes, nesting, batch defaults against items) and the
mutated body goes through the same path as an HTTP body: the shared JSON reader, then the
service. Whatever comes back — a 400, a deny with an error, a deny — must not be a permit."""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pdp.authzen import parse_evaluation, parse_json_body
from pdp.errors import PDPError
from pdp.service import PDPService
from tests.conftest import POLICIES, fresh_data_dir
from tests.security.conftest import TRANSFERS, request, service_on, write_set

DEFAULT = service_on(POLICIES / "default")
CERTIFICATION = service_on(POLICIES / "certification")
TRANSFERS_SET = service_on(write_set(fresh_data_dir("transfers") / "set",
                                     {"p.cedar": TRANSFERS}))

DENIED: list[tuple[PDPService, dict[str, Any]]] = [
    (DEFAULT, request(("user", "bob"), "delete", ("document", "handbook"))),
    (DEFAULT, request(("user", "bob"), "edit", ("document", "contract"))),
    (DEFAULT, request(("user", "carol"), "delete", ("document", "contract"))),
    (DEFAULT, request(("user", "bob"), "view", ("document", "contract"))),
    (DEFAULT, request(("user", "dave"), "view", ("document", "roadmap"))),
    (CERTIFICATION, request(("user", "alice"), "delete", ("record", "record-1"),
                            action_properties={"soft": False})),
    (CERTIFICATION, request(("user", "alice"), "delete", ("record", "record-1"))),
    (CERTIFICATION, request(("user", "bob"), "write", ("record", "record-1"))),
    (TRANSFERS_SET, request(("user", "bob"), "transfer", ("account", "a1"),
                            context={"amount": 20000})),
    (TRANSFERS_SET, request(("user", "bob"), "transfer", ("account", "a1"),
                            context={"amount": 10001})),
]
#: A request of each set that is permitted (for batch defaults).
PERMITTED = {id(DEFAULT): request(("user", "alice"), "delete", ("document", "roadmap")),
             id(CERTIFICATION): request(("user", "alice"), "delete", ("record", "record-1"),
                                        action_properties={"soft": True}),
             id(TRANSFERS_SET): request(("user", "bob"), "transfer", ("account", "a1"),
                                        context={"amount": 5})}
NUMBER = "__NUMBER__"


def decide(service: PDPService, body: bytes) -> list[bool]:
    """The decisions an HTTP client would get (none for a refused body)."""
    try:
        parsed = parse_json_body("application/json", body, max_bytes=1 << 20, max_depth=32)
        if isinstance(parsed, dict) and "evaluations" in parsed:
            answer = service.evaluations(parsed)
            return [e["decision"] for e in answer.get("evaluations", [answer])]
        return [service.evaluation(parse_evaluation(parsed))["decision"]]
    except PDPError:
        return []


# -- mutations ---------------------------------------------------------------------------------

def spellings(n: int) -> st.SearchStrategy[str]:
    return st.sampled_from([f"{n}.0", f"{n}e0", f"{n}E+0", f"{n}.000", f"{n * 10}e-1",
                            f"{n / 10}e1", f'"{n}"', f"{n}.5", f"{n}.0001", f" {n}.0 ",
                            f"{n}00e-2", f"{n:e}"])


CLAIMS = st.fixed_dictionaries({}, optional={
    "role": st.sampled_from(["admin", "Admin", "editor"]),
    "public": st.sampled_from([True, "true", 1]),
    "legal_hold": st.sampled_from([False, None, "false", 0]),
    "owner": st.sampled_from([{"type": "user", "id": "bob"}, {"type": "user", "id": "alice"},
                              {"__entity": {"type": "user", "id": "bob"}}]),
    "viewers": st.just({"type": "group", "id": "engineering"}),
    "status": st.sampled_from(["active", "archived"]),
})
RESERVED = st.sampled_from([
    {"action_properties": {"soft": True}},
    {"action_properties": {"soft": True}, "__entity": {"type": "user", "id": "carol"}},
    {"__entity": {"type": "user", "id": "carol"}},
    {"x": {"__extn": {"fn": "decimal", "arg": "1.0"}}},
    {"deep": [{"__entity": {"type": "group", "id": "editors"}}]},
])
LOOKALIKES = st.sampled_from([
    lambda s: s.upper(), lambda s: s.capitalize(), lambda s: s + "\u200b",
    lambda s: "\ufeff" + s, lambda s: s.replace("e", "\u0435"), lambda s: s.replace("o", "\u043e"),
    lambda s: "".join(chr(ord(c) + 0xFEE0) if c.isascii() and c.isalnum() else c for c in s),
    lambda s: s + "\u0301", lambda s: s + " ", lambda s: s.replace("a", "\u00e0"),
])


@st.composite
def mutated(draw: st.DrawFn) -> tuple[PDPService, bytes]:
    service, canonical = draw(st.sampled_from(DENIED))
    body = copy.deepcopy(canonical)
    number: str | None = None
    kinds = draw(st.lists(st.sampled_from(
        ["numbers", "claims", "reserved", "types", "nesting", "unicode", "batch"]),
        min_size=1, max_size=2, unique=True))
    if "unicode" in kinds:  # alone: a renamed subject may legitimately hold other rights
        # (and only with a schema: without one, "TRANSFER" is simply another action, which
        # the transfers set's allow-all permits)
        kinds = ["unicode"] if service is not TRANSFERS_SET else ["numbers"]
    for kind in kinds:
        if kind == "numbers" and isinstance(body.get("context", {}).get("amount"), int):
            number = draw(spellings(body["context"]["amount"]))
            body["context"]["amount"] = NUMBER
        elif kind == "claims":
            where = draw(st.sampled_from(["subject", "resource", "action"]))
            body[where].setdefault("properties", {}).update(draw(CLAIMS))
        elif kind == "reserved":
            where = draw(st.sampled_from(["context", "subject", "resource"]))
            target = body.setdefault("context", {}) if where == "context" else \
                body[where].setdefault("properties", {})
            target.update(draw(RESERVED))
        elif kind == "types" and body.get("context"):
            key = draw(st.sampled_from(sorted(body["context"])))
            body["context"][key] = draw(st.sampled_from(
                [True, "lots", [20000], {"value": 20000}, None, "1e5"]))
        elif kind == "nesting":
            wrap = draw(st.sampled_from(["list", "record"]))
            if body.get("context"):
                body["context"] = {k: [v] if wrap == "list" else {"v": v}
                                   for k, v in body["context"].items()}
            if body["action"].get("properties"):
                body["action"]["properties"] = {"nested": body["action"]["properties"]}
        elif kind == "unicode":
            field = draw(st.sampled_from(["action", "resource", "subject"]))
            change = draw(LOOKALIKES)
            if field == "action":
                body["action"]["name"] = change(body["action"]["name"])
            else:
                body[field]["id"] = change(body[field]["id"])
        elif kind == "batch":
            permitted = copy.deepcopy(PERMITTED[id(service)])
            item = {k: body[k] for k in ("subject", "action", "resource", "context")
                    if k in body}
            shape = draw(st.sampled_from(["defaults-permitted", "defaults-denied"]))
            if shape == "defaults-permitted":  # every denied part is restated in the item
                body = {**permitted, "evaluations": [item]}
            else:
                body = {**body, "evaluations": [{}]}
    text = json.dumps(body, ensure_ascii=draw(st.booleans()))
    if number is not None:
        text = text.replace(f'"{NUMBER}"', number)
    if draw(st.booleans()):  # and a duplicate key somewhere, the permitted value last
        key = draw(st.sampled_from(["subject", "action", "resource"]))
        permitted = PERMITTED[id(service)]
        text = text[:-1] + f', "{key}": ' + json.dumps(permitted[key]) + "}"
    return service, text.encode()


@settings(max_examples=250, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(case=mutated())
def test_no_mutation_of_a_denied_request_is_permitted(case: tuple[PDPService, bytes]) -> None:
    service, body = case
    assert True not in decide(service, body), body.decode()


def test_the_canonical_requests_are_denied_and_the_permitted_ones_permitted() -> None:
    for service, canonical in DENIED:
        assert decide(service, json.dumps(canonical).encode()) == [False], canonical
    for service in (DEFAULT, CERTIFICATION, TRANSFERS_SET):
        assert decide(service, json.dumps(PERMITTED[id(service)]).encode()) == [True]
