"""``pdp eval`` of a COAZ request (a body with ``message``): the same flow and the same answer
as ``POST /coaz/v1/authorize``, offline."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from pdp.http import create_app
from tests.cli.test_policy_workflow import Capture, run
from tests.conftest import POLICIES, make_service
from tests.gateway.support import RESOURCE, TOOLS, call, message

ALICE = {"iss": "https://as.example.com", "aud": RESOURCE, "sub": "alice@example.com",
         "client_id": "agent-app-1"}
DENIED = call("copy_object", {"source": "reports/q1.csv", "destination": "archive/2020.csv"})
PERMITTED = call("copy_object", {"source": "reports/q1.csv",
                                 "destination": "reports/q1-copy.csv"})


def _eval(capsys: Capture, tmp_path: Path, body: dict[str, object],
          *flags: str) -> tuple[int, str, str]:
    path = tmp_path / "coaz.json"
    path.write_text(json.dumps(body))
    return run(capsys, "eval", "--policies", str(POLICIES / "mcp"), *flags, str(path))


@pytest.mark.asyncio
@pytest.mark.parametrize("msg", [DENIED, PERMITTED, message("server/reboot", {})],
                         ids=["denied", "permitted", "no-rule"])
async def test_eval_json_of_a_coaz_request_answers_as_the_endpoint_does(
        tmp_path: Path, capsys: Capture, msg: dict[str, object]) -> None:
    body = {"message": msg, "tools": TOOLS, "claims": ALICE, "server": RESOURCE}
    # in a worker thread: the command runs its own event loop
    code, out, _ = await asyncio.to_thread(_eval, capsys, tmp_path, body, "--format", "json")
    assert code == 0
    app = create_app(make_service(POLICIES / "mcp", entity_store="memory"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://pdp.test") as client:
        expected = (await client.post("/coaz/v1/authorize", json=body)).json()
    assert json.loads(out) == expected


def test_eval_of_a_denied_coaz_request_says_so_and_exits_1_with_exit_code(
        tmp_path: Path, capsys: Capture) -> None:
    body = {"message": DENIED, "tools": TOOLS, "claims": ALICE, "server": RESOURCE}
    code, out, _ = _eval(capsys, tmp_path, body, "--exit-code")
    assert code == 1
    lines = out.splitlines()
    assert "coaz: evaluate (binding), not allowed" in lines
    assert "error: -32401 Access denied" in lines
    assert "evaluations[1]:" in lines and "  decision: deny (forbid)" in lines


def test_eval_of_a_coaz_request_without_a_message_object_exits_2(
        tmp_path: Path, capsys: Capture) -> None:
    code, _, err = _eval(capsys, tmp_path, {"message": {}, "tools": "nope"})
    assert code == 2 and "tools must be an array" in err
