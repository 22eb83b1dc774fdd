"""Starting the service compiles the policy set for the engine before the first request."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import pdp.engine.native as native
from pdp.authzen.model import Action, Entity, EvaluationRequest
from tests.service.test_reload_triggers import policy_set, service


def test_the_first_decision_after_start_compiles_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    compiled: list[Any] = []
    original = native.PolicySet.from_document

    def counting(*args: Any, **kwargs: Any) -> Any:
        compiled.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(native.PolicySet, "from_document", counting)
    svc = service(policy_set(tmp_path / "set"), watch=False, evaluator="native")  # its compiler
    svc.start()
    try:
        assert len(compiled) == 1  # at start, not on the request path
        decisions = svc.engine.decide([EvaluationRequest(
            Entity("User", "alice"), Action("read"), Entity("Doc", "d1"))])
        assert len(decisions) == 1
        assert len(compiled) == 1
    finally:
        svc.close()
