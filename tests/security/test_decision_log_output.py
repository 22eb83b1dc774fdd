"""Reading the decision log is safe with hostile values: ``pdp decisions`` escapes control,
bidi and C1 characters (a terminal shows them as escapes, never acts on them), and a time
filter outside the representable range is a 400 from ``/admin/decisions`` and a one-line
error (exit status 2) from the CLI, never a 500 or a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from pdp.authzen import Action, Decision, Entity, EvaluationRequest
from pdp.cli import main
from pdp.decision_log import DecisionLog
from pdp.entities.database import open_database, sqlite_url
from pdp.http import create_app
from tests.conftest import POLICIES, fresh_data_dir, make_service

HOSTILE = "ann\x1b[2J\u202egnp.exe\x9b31m\u2028\x85\x07"
OUT_OF_RANGE = ["0001-01-01T00:00:00+00:01", "9999-12-31T23:59:59-00:01"]


def test_pdp_decisions_prints_control_bidi_and_c1_characters_as_escapes(
        capsys: pytest.CaptureFixture[str]) -> None:
    data_dir = fresh_data_dir("hostile")
    url = sqlite_url(data_dir / "decisions.db")
    log = DecisionLog(open_database(url), personal_data="full")
    log.start()
    request = EvaluationRequest(Entity("user", HOSTILE), Action("view"), Entity("doc", "d"),
                                {"note": HOSTILE})
    log.evaluation(HOSTILE, request, Decision(False, errors=(HOSTILE,)), "v", 0.0)
    assert log.flush()
    log.close()
    for command in (["tail"], ["query"]):
        assert main(["decisions", *command, "--url", url]) == 0
        out = capsys.readouterr().out
        [line] = out.splitlines()
        assert line.isprintable(), repr(line)
        assert not any(ch in out for ch in "\x1b\u202e\x9b\u2028\x85\x07")
        record = json.loads(line)  # still JSON, and the values are intact
        assert record["subject"]["id"] == HOSTILE and record["context"]["note"] == HOSTILE


@pytest.mark.asyncio
@pytest.mark.parametrize("when", OUT_OF_RANGE)
async def test_an_out_of_range_time_filter_is_a_400(when: str) -> None:
    service = make_service(POLICIES / "search", admin_token="t")
    service.decision_log = DecisionLog.from_settings(
        service.settings.model_copy(update={"decision_log": "on"}))
    service.start()
    try:
        transport = httpx.ASGITransport(app=create_app(service))
        async with httpx.AsyncClient(transport=transport, base_url="http://pdp.test") as client:
            for name in ("since", "until"):
                response = await client.get("/admin/decisions", params={name: when},
                                            headers={"Authorization": "Bearer t"})
                assert response.status_code == 400, response.text
                assert name in response.text
    finally:
        service.close()


@pytest.mark.parametrize("when", [*OUT_OF_RANGE, "nonsense"])
def test_an_invalid_time_filter_is_a_one_line_cli_error(
        when: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = sqlite_url(tmp_path / "decisions.db")
    for command in ("query", "tail"):
        assert main(["decisions", command, "--url", url, "--since", when]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1, err
        assert err.startswith("error: --since") and "Traceback" not in err
