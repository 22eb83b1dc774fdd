"""The AuthZEN interop API Gateway scenario (25 decisions) through the real HTTP API, scored
as its runner scores it: the decision of each answer, an error counting as a failure."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from pdp.auth.keys import entry_for, new_key
from tests.conftest import POLICIES, start_server, stop_server

DECISIONS = Path(__file__).resolve().parent / "authzen" / "api-gateway" / "decisions.json"
CASES: list[dict[str, Any]] = json.loads(DECISIONS.read_text())["evaluation"]
KEY = new_key()


def test_the_scenario_has_25_cases() -> None:
    assert len(CASES) == 25


@pytest.mark.parametrize("authorization", [KEY, f"Basic {KEY}"])
def test_every_case_is_decided_as_expected_over_http(authorization: str) -> None:
    """The runner sends `Authorization: <key>` (its examples `Basic <key>`)."""
    proc, base = start_server(POLICIES / "api-gateway", env={
        "PDP_API_KEYS": entry_for("runner", KEY), "PDP_API_KEY_ANY_SCHEME": "true"})
    try:
        with httpx.Client(base_url=base, timeout=10) as client:
            passed = 0
            for case in CASES:
                answer = client.post("/access/v1/evaluation", json=case["request"],
                                     headers={"Authorization": authorization})
                assert answer.status_code == 200, answer.text
                passed += answer.json()["decision"] is case["expected"]
    finally:
        stop_server(proc)
    assert passed == 25
