"""``/metrics`` (HTTP latency and statuses per endpoint, the cache hit ratio, the decision-log
queue), ``/ready`` (policy set and entity store; the decision log is reported only), and the
request id in log records."""

from __future__ import annotations

import io
import json
import logging
import math
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families

from pdp.http import create_app
from pdp.logs import make_handler
from pdp.service import PDPService
from pdp.settings import Settings
from tests.conftest import POLICIES, RICK_READS_TODOS, fresh_data_dir, make_service
from tests.entities.databases import make_backend
from tests.waiting import eventually, wait_until

EVALUATION = "/access/v1/evaluation"
VALID = RICK_READS_TODOS
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: str) -> Samples:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def _logging_service(policies: Path, **overrides: Any) -> PDPService:
    """A service with the decision log on (``make_service`` turns it off)."""
    return PDPService.from_settings(Settings(
        policies=policies, watch=False, decision_log="on",
        data_dir=fresh_data_dir(policies.name), **overrides))


def _client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://pdp.test")


async def _scrape(client: httpx.AsyncClient) -> Samples:
    response = await client.get("/metrics")
    assert response.status_code == 200
    return samples(response.text)


# -- /metrics ---------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_http_latency_and_statuses_are_counted_per_endpoint() -> None:
    app = create_app(make_service(POLICIES / "todo", entity_store="memory", max_batch=2))
    async with _client(app) as client:
        before = await _scrape(client)
        assert before[("pdp_http_request_duration_seconds_count",
                       (("endpoint", "evaluation"),))] == 0
        for _ in range(3):
            assert (await client.post(EVALUATION, json=VALID)).status_code == 200
        assert (await client.post(EVALUATION, content=b"{")).status_code == 400
        refused = await client.post("/access/v1/evaluations",
                                    json={**VALID, "evaluations": [{}] * 3})
        assert refused.status_code == 413
        await client.get("/health")
        got = await _scrape(client)
    evaluation = (("endpoint", "evaluation"),)
    assert got[("pdp_http_request_duration_seconds_count", evaluation)] == 4
    assert got[("pdp_http_request_duration_seconds_bucket",
                (("endpoint", "evaluation"), ("le", "+Inf")))] == 4
    assert got[("pdp_http_request_duration_seconds_sum", evaluation)] > 0
    assert got[("pdp_http_requests_total", (("endpoint", "evaluation"), ("status", "200")))] == 3
    assert got[("pdp_http_requests_total", (("endpoint", "evaluation"), ("status", "400")))] == 1
    assert got[("pdp_http_requests_total",
                (("endpoint", "evaluations"), ("status", "413")))] == 1
    for endpoint in ("search_subject", "search_resource", "search_action", "coaz_map",
                     "coaz_authorize"):
        assert got[("pdp_http_request_duration_seconds_count", (("endpoint", endpoint),))] == 0


@pytest.mark.asyncio
async def test_the_cache_hit_ratio_is_derived_from_hits_and_misses() -> None:
    app = create_app(make_service(POLICIES / "todo", entity_store="memory"))
    async with _client(app) as client:
        assert math.isnan((await _scrape(client))[("pdp_decision_cache_hit_ratio", ())])
        for _ in range(4):
            await client.post(EVALUATION, json=VALID)
        got = await _scrape(client)
    assert got[("pdp_decision_cache_misses_total", ())] == 1
    assert got[("pdp_decision_cache_hits_total", ())] == 3
    assert got[("pdp_decision_cache_hit_ratio", ())] == pytest.approx(0.75)


@pytest.mark.asyncio
async def test_the_decision_log_queue_and_writes_are_exposed() -> None:
    service = _logging_service(POLICIES / "todo", entity_store="memory")
    assert service.decision_log is not None
    app = create_app(service)
    async with _client(app) as client:
        for _ in range(5):
            await client.post(EVALUATION, json=VALID)
        queued = await _scrape(client)
        assert queued[("pdp_decision_log_queued", ())] == 5  # no writer started yet
        assert queued[("pdp_decision_log_written_total", ())] == 0
        service.start()
        try:
            assert service.decision_log.flush(10)
            written = await _scrape(client)
        finally:
            service.close()
    assert written[("pdp_decision_log_queued", ())] == 0
    assert written[("pdp_decision_log_written_total", ())] == 5
    assert written[("pdp_decision_log_dropped_total", ())] == 0
    version = service.policies.current.version
    assert written[("pdp_policy_set_info", (("version", version),))] == 1
    assert written[("pdp_policy_reload_failures_total", ())] == 0


# -- /ready -------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_ready_is_200_while_the_store_answers_and_503_once_it_is_gone(
        tmp_path: Path) -> None:
    backend = make_backend("sqlite", tmp_path)
    service = _logging_service(
        POLICIES / "search", database_url=backend.url, poll_interval=0.05,
        entity_max_staleness=0.3,
        decision_log_url=f"sqlite:///{tmp_path / 'nowhere' / 'log.db'}")  # cannot be written
    service.start()
    try:
        async with _client(create_app(service)) as client:
            ready = await client.get("/ready")
            assert ready.status_code == 200, ready.text
            body = ready.json()
            assert body["status"] == "ready"
            assert body["checks"]["policy_set"]["version"] == service.policies.current.version
            assert body["checks"]["entity_store"]["ready"] is True
            assert "decision_log" in body["checks"]  # reported, never a reason to be unready
            with backend.unreachable():
                async def unready() -> httpx.Response | None:
                    answer = await client.get("/ready")
                    return answer if answer.status_code != 200 else None

                answer = await eventually(unready, message="becoming unready")
                assert answer.status_code == 503
                body = answer.json()
                assert body["status"] == "not_ready"
                assert body["checks"]["entity_store"]["ready"] is False
                assert "entity store" in body["checks"]["entity_store"]["message"]
                assert (await client.get("/health")).status_code == 200  # still alive
            async def ready() -> bool:
                return (await client.get("/ready")).status_code == 200

            await eventually(ready, message="becoming ready again")
    finally:
        service.close()
        backend.close()


# -- logs -------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_line_logged_while_handling_a_request_carries_its_request_id(
        tmp_path: Path) -> None:
    backend = make_backend("sqlite", tmp_path)
    service = make_service(POLICIES / "search", database_url=backend.url, poll_interval=0.05,
                           entity_max_staleness=0.1)
    stream = io.StringIO()
    handler = make_handler("json", stream)
    pdp_logger = logging.getLogger("pdp")
    pdp_logger.addHandler(handler)
    body = {"subject": {"type": "user", "id": "alice"}, "action": {"name": "delete"},
            "resource": {"type": "record", "id": "101"}}
    try:
        async with _client(create_app(service)) as client:
            with backend.unreachable():
                # past the staleness bound: decisions fail closed
                wait_until(lambda: not service.store.status()[  # type: ignore[attr-defined]
                    "available"], message="the store passing its staleness bound")
                failed = await client.post(EVALUATION, json=body,
                                           headers={"X-Request-ID": "req-failing-1"})
                assert failed.status_code == 503
            await client.post(EVALUATION, json=body)  # no id: none is invented
    finally:
        pdp_logger.removeHandler(handler)
        service.close()
        backend.close()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    failures = [r for r in lines if r["logger"] == "pdp.http" and r["level"] == "ERROR"]
    assert len(failures) == 2, lines
    assert failures[0]["request_id"] == "req-failing-1"
    assert "/access/v1/evaluation" in failures[0]["message"]
    assert failures[1]["request_id"] is None
    # a library's line written during the request carries the id as well
    assert any(r["logger"] == "pdp.database" and r["request_id"] == "req-failing-1"
               for r in lines)


# -- OpenTelemetry -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def spans() -> InMemorySpanExporter:
    """The process's OpenTelemetry tracer provider, exporting to memory (set once: the
    OpenTelemetry API allows one global provider per process)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return exporter


@pytest.mark.asyncio
async def test_opentelemetry_spans_are_made_only_when_asked_for(
        spans: InMemorySpanExporter) -> None:
    for enabled in (False, True):
        spans.clear()
        app = create_app(make_service(POLICIES / "todo", entity_store="memory",
                                      opentelemetry=enabled))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://pdp.test") as client:
            answer = await client.post(EVALUATION, json=VALID)
        assert answer.json() == {"decision": True}
        names = [span.name for span in spans.get_finished_spans()]
        if enabled:
            assert any(EVALUATION in name for name in names), names
        else:
            assert names == []
