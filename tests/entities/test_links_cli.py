"""``pdp links add|remove|list`` against the database a PDP serves: checked against the
policy set, and seen by the PDP's next decision."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pdp.authzen.model import Action, Entity, EvaluationRequest
from pdp.cli import main
from tests.conftest import make_service
from tests.entities.databases import Backend
from tests.entities.test_links_api import SHARE, policy_set


@pytest.fixture
def pdp(backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> Any:
    directory = policy_set(tmp_path)
    monkeypatch.setenv("PDP_DATABASE_URL", backend.url)
    monkeypatch.setenv("PDP_POLICIES", str(directory))

    def run(*args: str) -> tuple[int, str, str]:
        code = main(["links", *args])
        out, err = capsys.readouterr()
        return code, out, err

    run.directory = directory  # type: ignore[attr-defined]
    run.url = backend.url  # type: ignore[attr-defined]
    return run


def test_links_are_added_listed_and_removed_and_decide_in_a_running_pdp(pdp: Any) -> None:
    service = make_service(pdp.directory, database_url=pdp.url)
    view = EvaluationRequest(Entity("User", "alice"), Action("view"), Entity("Doc", "report"))
    try:
        assert not service.decide([view])[0].allowed
        code, out, _ = pdp("add", json.dumps(SHARE))
        assert (code, json.loads(out)["written"]) == (0, 1)
        assert json.loads(pdp("list")[1]) == [dict(SHARE, managed_by="api", template={
        "id": "share", "file": "p.cedar", "line": 1, "column": 1})]
        service.store.sync()  # type: ignore[attr-defined]
        assert service.decide([view])[0].reasons == ("alice-q3",)
        code, out, _ = pdp("remove", "alice-q3")
        assert (code, json.loads(out)["deleted"]) == (0, 1)
        service.store.sync()  # type: ignore[attr-defined]
        assert not service.decide([view])[0].allowed
    finally:
        service.close()


def test_a_wrong_link_is_refused_with_the_reason(pdp: Any) -> None:
    code, out, err = pdp("add", json.dumps(dict(SHARE, template_id="nope")))
    assert (code, out) == (1, "")
    assert "no template 'nope'" in err
    assert pdp("remove", "absent")[0] == 1
