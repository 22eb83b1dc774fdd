"""One request decided on its own (``Engine.decide_one``) as it would be in a batch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pdp.authzen.model import Action, Entity, EvaluationRequest
from pdp.cedar.policyset import Bound
from pdp.engine import Engine, EngineOptions
from pdp.engine.native import FAILED
from pdp.entities import InMemoryEntityStore
from pdp.policies.compiled import compile_directory
from pdp.policies.holder import PolicyHolder
from tests.engine.test_engine import ent, ref

POLICIES = """
@id("owner")
permit (principal, action == Action::"read", resource) when { resource.owner == principal };
@id("day")
permit (principal, action, resource is Doc) when { context.hour < 18 };
@id("locked")
forbid (principal, action, resource) when { resource.locked };
@id("level")
permit (principal, action == Action::"edit", resource) when { principal.level > 2 };
"""
ENTITIES = [
    ent("User", "alice", {"level": 3}),
    ent("User", "bob", {"level": 1}),
    ent("Doc", "d1", {"owner": ref("User", "alice"), "locked": False}),
    ent("Doc", "d2", {"owner": ref("User", "bob"), "locked": True}),
]


def _engine(directory: Path, cache: bool, evaluator: str = "native") -> Engine:
    directory.mkdir(exist_ok=True)
    (directory / "p.cedar").write_text(POLICIES)
    return Engine(PolicyHolder(compile_directory(directory)), InMemoryEntityStore(ENTITIES),
                  EngineOptions(decision_cache_bytes=8_000 if cache else 0,
                                evaluator=evaluator))


_requests = st.builds(
    EvaluationRequest,
    st.builds(Entity, st.sampled_from(["User", "Doc", "not a type"]),
              st.sampled_from(["alice", "bob", "carol"]),
              st.one_of(st.none(), st.just({"level": 5}))),
    st.builds(Action, st.sampled_from(["read", "edit", "delete"])),
    st.builds(Entity, st.sampled_from(["Doc", "User"]), st.sampled_from(["d1", "d2", "d3"]),
              st.one_of(st.none(), st.just({"locked": False}), st.just({"owner": 1}))),
    st.one_of(st.none(), st.fixed_dictionaries({"hour": st.integers(0, 23)}),
              st.just({"hour": "late"})))


@pytest.mark.parametrize("cache", [False, True], ids=["cache off", "cache on"])
@pytest.mark.parametrize("evaluator", ["native", "cedarpy"])
@given(asked=st.lists(_requests, min_size=1, max_size=6))
def test_each_request_alone_is_decided_as_in_a_batch(
        tmp_path_factory: pytest.TempPathFactory, cache: bool, evaluator: str,
        asked: list[EvaluationRequest]) -> None:
    base = tmp_path_factory.mktemp("one")
    alone = _engine(base / "alone", cache, evaluator)
    batched = _engine(base / "batched", cache, evaluator)
    # twice each: the second time from the plan (and the cache, when on)
    for _ in range(2):
        one_by_one = [alone.decide_one(r) for r in asked]
        in_batches = [d for r in asked for d in batched.decide([r, r])[:1]]
        assert one_by_one == in_batches
    assert alone.stats.outcomes == {k: v // 2 for k, v in batched.stats.outcomes.items()}


def test_a_failing_native_evaluation_denies_and_is_never_cached(
        tmp_path: Path, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    engine = _engine(tmp_path, cache=True)

    def broken(*args: Any) -> Any:
        raise RuntimeError("broken evaluator")

    monkeypatch.setattr(Bound, "evaluate", broken)
    req = EvaluationRequest(Entity("User", "alice"), Action("read"), Entity("Doc", "d1"))
    assert engine.decide_one(req) is FAILED
    assert engine.decide([req, req]) == [FAILED, FAILED]
    assert engine.decide_one(req) is FAILED and not FAILED.allowed
    assert engine.cache is not None and len(engine.cache) == 0
    assert "cedar evaluation failed: broken evaluator" in caplog.text
