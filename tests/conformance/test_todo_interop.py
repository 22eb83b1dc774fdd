"""The AuthZEN interop Todo cases (decisions 1.0-01 and 1.0-02) through the real HTTP API,
compared as the interop harness compares them: the JSON text of ``decision`` or of the whole
``evaluations`` array."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

TODO = Path(__file__).resolve().parent / "authzen" / "todo"


def _text(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _cases(kind: str) -> list[Any]:
    out = []
    for name in ("decisions-authorization-api-1_0-01.json",
                 "decisions-authorization-api-1_0-02.json"):
        doc = json.loads((TODO / name).read_text())
        for i, case in enumerate(doc.get(kind, [])):
            out.append(pytest.param(case["request"], case["expected"],
                                    id=f"{name[-7:-5]}-{kind}-{i}"))
    return out


EVALUATION_CASES = _cases("evaluation")
EVALUATIONS_CASES = _cases("evaluations")


def test_the_interop_files_hold_eighty_three_cases() -> None:
    assert (len(EVALUATION_CASES), len(EVALUATIONS_CASES)) == (80, 3)


@pytest.mark.asyncio
@pytest.mark.parametrize(("request_body", "expected"), EVALUATION_CASES)
async def test_each_single_evaluation_gives_the_expected_decision_over_asgi(
        todo_client: httpx.AsyncClient, request_body: dict[str, Any], expected: bool) -> None:
    response = await todo_client.post("/access/v1/evaluation", json=request_body)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert _text(response.json()) == _text({"decision": expected})


@pytest.mark.asyncio
@pytest.mark.parametrize(("request_body", "expected"), EVALUATIONS_CASES)
async def test_each_batch_gives_the_expected_evaluations_array_over_asgi(
        todo_client: httpx.AsyncClient, request_body: dict[str, Any],
        expected: list[Any]) -> None:
    response = await todo_client.post("/access/v1/evaluations", json=request_body)
    assert response.status_code == 200
    assert _text(response.json()["evaluations"]) == _text(expected)


def test_every_case_passes_through_a_real_uvicorn_process(todo_server: str) -> None:
    failures = []
    with httpx.Client(base_url=todo_server, timeout=10) as client:
        for param in EVALUATION_CASES:
            body, expected = param.values
            got = client.post("/access/v1/evaluation", json=body).json()
            if _text(got) != _text({"decision": expected}):
                failures.append((param.id, got))
        for param in EVALUATIONS_CASES:
            body, expected = param.values
            got = client.post("/access/v1/evaluations", json=body).json()
            if _text(got.get("evaluations")) != _text(expected):
                failures.append((param.id, got))
    assert failures == []
