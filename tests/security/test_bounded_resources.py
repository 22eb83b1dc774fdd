"""Resources one client can hold are bounded, against real ``pdp serve`` processes where the
bug needs sockets.

Shown: a client that dribbles its request head (slowloris) or sends nothing is disconnected
after ``PDP_HEADER_TIMEOUT``; a head larger than ``PDP_MAX_HEADER_BYTES`` is refused with 431;
a request in flight on a keep-alive connection when SIGTERM arrives is finished; search runs
off the event loop and examines at most ``PDP_MAX_SEARCH_SCAN`` candidates per page.
"""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
import tracemalloc
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from pdp.authzen.model import Action, Decision, Entity, EvaluationRequest
from pdp.engine.cache import DecisionCache
from pdp.entities import InMemoryEntityStore, StoredEntity
from pdp.http import create_app
from pdp.service import PDPService
from tests.conftest import POLICIES, RICK_READS_TODOS, Server, launch_server, make_service


def _port(server: Server) -> int:
    return int(server.base.rsplit(":", 1)[1])


def _closed_within(sock: socket.socket, seconds: float) -> tuple[bool, bytes]:
    """Wait (reading) until the server closes the connection or ``seconds`` pass."""
    sock.settimeout(0.2)
    received = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        except ConnectionResetError:
            return True, received
        if not chunk:
            return True, received
        received += chunk
    return False, received


@pytest.fixture(scope="module")
def guarded() -> Iterator[Server]:
    server = launch_server(POLICIES / "todo", env={"PDP_HEADER_TIMEOUT": "1",
                                                  "PDP_MAX_HEADER_BYTES": "8192"})
    try:
        yield server
    finally:
        server.stop()


def test_a_slowloris_client_is_disconnected(guarded: Server) -> None:
    with socket.create_connection(("127.0.0.1", _port(guarded)), timeout=5) as sock:
        sock.sendall(b"POST /access/v1/evaluation HTTP/1.1\r\nHost: localhost\r\n")
        closed = False
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not closed:
            try:
                sock.sendall(b"X-Slow: 1\r\n")  # one header line now and then, never the end
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            closed, _ = _closed_within(sock, 0.3)
        assert closed, "the server kept a connection whose head never ended"


def test_a_silent_connection_is_disconnected(guarded: Server) -> None:
    with socket.create_connection(("127.0.0.1", _port(guarded)), timeout=5) as sock:
        closed, _ = _closed_within(sock, 20)
        assert closed


def test_a_kept_alive_connection_gets_the_same_head_deadline(guarded: Server) -> None:
    body = json.dumps(RICK_READS_TODOS).encode()
    request = (b"POST /access/v1/evaluation HTTP/1.1\r\nHost: localhost\r\n"
               b"Content-Type: application/json\r\nContent-Length: "
               + str(len(body)).encode() + b"\r\n\r\n" + body)
    with socket.create_connection(("127.0.0.1", _port(guarded)), timeout=5) as sock:
        sock.sendall(request)
        data = b""
        while b'{"decision":true}' not in data:
            data += sock.recv(65536)
        sock.sendall(b"POST /access/v1/evaluation HTTP/1.1\r\n")
        closed = False
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not closed:
            try:
                sock.sendall(b"X-Slow: 1\r\n")
            except (BrokenPipeError, ConnectionResetError):
                break
            closed, _ = _closed_within(sock, 0.3)
        assert closed


def test_an_oversized_head_is_refused(guarded: Server) -> None:
    with socket.create_connection(("127.0.0.1", _port(guarded)), timeout=5) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\nX-Big: " + b"a" * 9000
                     + b"\r\n\r\n")
        closed, received = _closed_within(sock, 20)
    assert closed
    assert received.startswith(b"HTTP/1.1 431")
    fine = httpx.get(guarded.base + "/health", headers={"X-Big": "a" * 4000})
    assert fine.status_code == 200


def test_a_request_in_flight_on_a_kept_alive_connection_is_finished_at_sigterm() -> None:
    server = launch_server(POLICIES / "todo")
    body = json.dumps(RICK_READS_TODOS).encode()
    head = (b"POST /access/v1/evaluation HTTP/1.1\r\nHost: localhost\r\n"
            b"Content-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode() + b"\r\n\r\n")
    try:
        with socket.create_connection(("127.0.0.1", _port(server)), timeout=20) as sock:
            sock.sendall(head + body)  # a first request: the connection is kept alive
            data = b""
            while b'{"decision":true}' not in data:
                data += sock.recv(65536)
            sock.sendall(head[:30])  # the second is in flight when SIGTERM comes
            server.proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 2
            while time.monotonic() < deadline and server.proc.poll() is None:
                if "Shutting down" in server.log.read_text():
                    break
                time.sleep(0.02)
            sock.sendall(head[30:] + body)
            answer = b""
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 200"), answer
        assert answer.endswith(b'{"decision":true}')
    finally:
        assert server.stop() == 0


# -- search -------------------------------------------------------------------------------


def _searchable(**overrides: Any) -> PDPService:
    """400 records, one in 40 of the manager's department (so matches are sparse)."""
    service = make_service(POLICIES / "search", entity_store="memory", **overrides)
    entities = [StoredEntity.build("user", "ann", {"role": "manager", "department": "Sales"})]
    entities += [StoredEntity.build("record", f"{i:04d}", {
        "title": "t", "department": "Legal" if i % 40 else "Sales",
        "owner": {"__entity": {"type": "user", "id": "bo"}}}) for i in range(1, 401)]
    store = service.store
    assert isinstance(store, InMemoryEntityStore)
    store.replace_all(entities)
    return service


@pytest.fixture
def search_service() -> Iterator[PDPService]:
    service = _searchable(max_search_scan=50)
    yield service
    service.close()


SEARCH = {"subject": {"type": "user", "id": "ann"}, "action": {"name": "edit"},
          "resource": {"type": "record"}}


def test_search_examines_at_most_the_scan_bound_per_page(search_service: PDPService) -> None:
    pages: list[dict[str, Any]] = []
    token = None
    for _ in range(100):
        page = search_service.search("resource", {**SEARCH, **(
            {"page": {"token": token}} if token else {})})
        pages.append(page)
        token = page["page"]["next_token"] if "page" in page else ""
        if not token:
            break
    found = [r["id"] for p in pages for r in p["results"]]
    unbounded = _searchable()
    try:
        whole = [r["id"] for r in unbounded.search("resource", SEARCH)["results"]]
    finally:
        unbounded.close()
    assert found == whole and whole  # the same results, in the same order, just in pages
    assert len(pages) >= 400 // 50  # each page examined at most 50 of the 400 records


@pytest.mark.asyncio
async def test_search_runs_off_the_event_loop(search_service: PDPService) -> None:
    threads: list[int] = []
    search = search_service.search

    def recording(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.get_ident())
        return search(*args, **kwargs)

    search_service.search = recording  # type: ignore[method-assign]
    transport = httpx.ASGITransport(app=create_app(search_service))
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        answer = await client.post("/access/v1/search/resource", json=SEARCH)
    assert answer.status_code == 200
    assert threads and threading.get_ident() not in threads


# -- the decision cache's memory budget -------------------------------------------------------


def test_the_decision_cache_stays_within_its_memory_budget() -> None:
    budget = 4 * 1024 * 1024
    cache = DecisionCache(budget)
    generation = ("v1", 1)
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        for i in range(40_000):  # varied requests: about four times what the budget holds
            key = cache.key(EvaluationRequest(
                Entity("user", f"user-{i}", {"department": "Sales", "level": i % 9}),
                Action("read"), Entity("document", f"doc-{i * 7}"),
                {"ip": f"10.{i % 250}.{i % 200}.7", "time": f"2026-01-01T{i % 24:02d}:00:00Z",
                 "note": "x" * (i % 400)}))
            assert key is not None
            cache.put(generation, key, Decision(i % 3 != 0, "permit" if i % 3 else "forbid",
                                                (f"policy-{i % 11}",)))
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    allocated = held - before
    assert cache.used_bytes <= budget
    assert 2_000 < len(cache) < 40_000  # full, and evicting
    # what the cache accounts is what the process holds for it (within 15 %)
    assert 0.85 * cache.used_bytes <= allocated <= 1.15 * budget, (allocated, cache.used_bytes)
