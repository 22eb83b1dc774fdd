"""``/metrics``: decisions by outcome, latency, cache hits and misses, reloads."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from pdp.authzen.model import Action, Entity, EvaluationRequest
from pdp.engine.metrics import DecisionCollector
from pdp.http import create_app
from tests.conftest import POLICIES, RICK, make_service


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_the_collector_reports_outcomes_latency_and_the_cache(tmp_path: Path) -> None:
    service = make_service(POLICIES / "todo", entity_store="memory")
    allowed = EvaluationRequest(Entity("user", RICK), Action("can_read_todos"),
                                Entity("todo", "1"))
    denied = EvaluationRequest(Entity("user", RICK), Action("no_such_action"),
                               Entity("todo", "1"))
    service.decide([allowed, denied])
    service.decide([allowed])
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DecisionCollector(service.engine, service.policies))
    got = samples(generate_latest(registry).decode())
    assert got[("pdp_decisions_total", (("outcome", "permit"),))] == 2
    # (an action the schema does not declare is denied as invalid, never evaluated)
    assert got[("pdp_decisions_total", (("outcome", "invalid"),))] == 1
    assert got[("pdp_decide_duration_seconds_count", ())] == 2
    assert got[("pdp_decide_duration_seconds_bucket", (("le", "+Inf"),))] == 2
    assert got[("pdp_decision_cache_hits_total", ())] == 1
    assert got[("pdp_decision_cache_misses_total", ())] == 2
    version = service.policies.current.version
    assert got[("pdp_policy_set_info", (("version", version),))] == 1


@pytest.mark.asyncio
async def test_the_metrics_endpoint_serves_the_prometheus_text_format() -> None:
    app = create_app(make_service(POLICIES / "todo", entity_store="memory"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://pdp.test") as client:
        await client.post("/access/v1/evaluation", json={
            "subject": {"type": "user", "id": RICK}, "action": {"name": "can_read_todos"},
            "resource": {"type": "todo", "id": "1"}})
        answer = await client.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    got = samples(answer.text)
    assert got[("pdp_decisions_total", (("outcome", "permit"),))] == 1
    assert ("pdp_policy_reloads_total", ()) in got
    assert ("pdp_policy_reload_failures_total", ()) in got
