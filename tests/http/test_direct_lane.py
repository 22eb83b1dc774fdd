"""``pdp serve``'s direct lane answers the decision endpoints exactly as the application does.

Two real servers on the same policies and settings, one with ``PDP_HTTP_LANE=direct`` (the
default) and one with ``asgi``, get the same raw HTTP requests; status, JSON body and the
headers a PEP reads must agree, and the direct server's metrics must show the lane answered.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator

import httpx
import pytest

from pdp.auth.keys import entry_for, new_key
from tests.auth.conftest import PDP_AUDIENCE, PEP_ISSUER, PepTokens
from tests.conftest import POLICIES, Server, launch_server

KEY = new_key()
EVAL = json.dumps({"subject": {"type": "user", "id": "rick@the-citadel.com"},
                   "action": {"name": "can_read_todos"},
                   "resource": {"type": "todo", "id": "t1"}}).encode()
READ = ("content-type", "cache-control", "x-request-id", "www-authenticate", "retry-after",
        "connection")


def _env(lane: str) -> dict[str, str]:
    return {"PDP_HTTP_LANE": lane, "PDP_API_KEYS": entry_for("pep", KEY),
            "PDP_RATE_LIMIT": "1000", "PDP_RATE_LIMIT_BURST": "1000",
            "PDP_MAX_BODY_BYTES": "4096", "PDP_REQUEST_TIMEOUT": "1"}


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[Server, Server]]:
    direct = launch_server(POLICIES / "todo", "--log-level", "warning", env=_env("direct"))
    try:
        asgi = launch_server(POLICIES / "todo", "--log-level", "warning", env=_env("asgi"))
        try:
            yield direct, asgi
        finally:
            asgi.stop()
    finally:
        direct.stop()


def _port(server: Server) -> int:
    return int(server.base.rsplit(":", 1)[1])


def _exchange(server: Server, raw: bytes, responses: int = 1) -> list[tuple[int, dict[str, str],
                                                                           bytes]]:
    """Send ``raw`` on one connection; read ``responses`` HTTP responses."""
    with socket.create_connection(("127.0.0.1", _port(server)), timeout=10) as sock:
        sock.sendall(raw)
        data = b""
        out: list[tuple[int, dict[str, str], bytes]] = []
        while len(out) < responses:
            head_end = data.find(b"\r\n\r\n")
            if head_end < 0:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
                continue
            lines = data[:head_end].decode("latin-1").split("\r\n")
            status = int(lines[0].split()[1])
            headers = {k.strip().lower(): v.strip() for k, v in
                       (line.split(":", 1) for line in lines[1:])}
            length = int(headers.get("content-length", "0"))
            while len(data) < head_end + 4 + length:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
            out.append((status, headers, data[head_end + 4:head_end + 4 + length]))
            data = data[head_end + 4 + length:]
        return out


def _request(path: str = "/access/v1/evaluation", body: bytes = EVAL, *,
             headers: dict[str, str] | None = None, method: str = "POST",
             version: str = "1.1", key: str | None = KEY) -> bytes:
    fields = {"Host": "127.0.0.1", "Content-Type": "application/json",
              "Content-Length": str(len(body))}
    if key is not None:
        fields["X-API-Key"] = key
    fields.update(headers or {})
    head = f"{method} {path} HTTP/{version}\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in fields.items() if v is not None) + "\r\n"
    return head.encode("latin-1") + body


def _comparable(response: tuple[int, dict[str, str], bytes]) -> tuple[object, ...]:
    status, headers, body = response
    return (status, {k: headers[k] for k in READ if k in headers},
            json.loads(body) if body else None)


CASES = {
    "an evaluation": _request(),
    "an explained evaluation with a request id": _request(
        headers={"X-PDP-Explain": "true", "X-Request-ID": "req-7"}),
    "a batch": _request("/access/v1/evaluations", json.dumps({
        "subject": {"type": "user", "id": "rick@the-citadel.com"},
        "evaluations": [{"action": {"name": "can_read_todos"},
                         "resource": {"type": "todo", "id": "1"}},
                        {"action": {"name": "can_delete_todo"},
                         "resource": {"type": "todo", "id": "2",
                                      "properties": {"ownerID": "x"}}},
                        {"action": {}}]}).encode()),
    "a query string": _request("/access/v1/evaluation?x=1"),
    "no credential": _request(key=None, headers={"X-Request-ID": "r-401"}),
    "a wrong key": _request(key="not-a-key"),
    "a basic credential": _request(key=None, headers={"Authorization": "Basic eDp5"}),
    "malformed JSON": _request(body=b'{"subject":'),
    "a duplicate key": _request(body=b'{"subject":{"type":"user","id":"a","id":"b"},'
                                     b'"action":{"name":"x"},"resource":{"type":"t","id":"1"}}'),
    "the wrong content type": _request(headers={"Content-Type": "text/plain"}),
    "an empty body": _request(body=b""),
    "a missing field": _request(body=b'{"subject":{"type":"user","id":"a"}}'),
    "a body over the limit": _request(body=b"[" + b" " * 5000 + b"]"),
    "a host not allowed": _request(headers={"Host": "evil.example"}),
    "HTTP/1.0": _request(version="1.0"),
    "connection close": _request(headers={"Connection": "close"}),
    "a GET": _request(method="GET", body=b""),
    "an unknown action name type": _request(body=b'{"subject":{"type":"user","id":"a"},'
                                                 b'"action":{"name":7},'
                                                 b'"resource":{"type":"t","id":"1"}}'),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_direct_lane_answers_as_the_application_does(
        servers: tuple[Server, Server], case: str) -> None:
    direct, asgi = servers
    ours = _exchange(direct, CASES[case])
    theirs = _exchange(asgi, CASES[case])
    assert len(ours) == len(theirs) == 1
    if case == "a body over the limit":  # the lane does not read what it refuses: it closes
        assert ours[0][1]["connection"] == "close"
        del ours[0][1]["connection"]
    assert _comparable(ours[0]) == _comparable(theirs[0])


def test_pipelined_requests_are_answered_in_order_whoever_answers_them(
        servers: tuple[Server, Server]) -> None:
    direct, asgi = servers
    health = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    first = _request(headers={"X-Request-ID": "one"})
    last = _request(headers={"X-Request-ID": "three"})
    raw = first + health + last
    ours = _exchange(direct, raw, responses=3)
    assert [_comparable(r) for r in ours] == [_comparable(r) for r in
                                              _exchange(asgi, raw, responses=3)]
    assert [r[1].get("x-request-id") for r in ours] == ["one", None, "three"]


def _direct_count(server: Server, endpoint: str) -> float:
    text = httpx.get(server.base + "/metrics").text
    found = re.search(rf'^pdp_http_direct_requests_total{{endpoint="{endpoint}"}} (\S+)$', text,
                      re.MULTILINE)
    assert found is not None, text
    return float(found.group(1))


def test_the_lane_answers_the_decision_endpoints_and_counts_what_it_answered(
        servers: tuple[Server, Server]) -> None:
    direct, asgi = servers
    before = _direct_count(direct, "evaluation")
    for _ in range(3):
        assert _exchange(direct, _request())[0][0] == 200
    assert _exchange(direct, _request(key=None))[0][0] == 401
    assert _direct_count(direct, "evaluation") == before + 4
    text = httpx.get(direct.base + "/metrics").text
    assert re.search(r'^pdp_http_requests_total{endpoint="evaluation",status="401"} [1-9]',
                     text, re.MULTILINE)
    _exchange(asgi, _request())
    assert _direct_count(asgi, "evaluation") == 0


def test_a_body_that_stops_arriving_is_answered_408_and_the_connection_closed(
        servers: tuple[Server, Server]) -> None:
    direct, _ = servers
    partial = _request()[:-5]  # the head says more than is sent
    with socket.create_connection(("127.0.0.1", _port(direct)), timeout=10) as sock:
        sock.sendall(partial)
        data = b""
        while True:  # the server answers after PDP_REQUEST_TIMEOUT, then closes
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    assert data.startswith(b"HTTP/1.1 408 ")
    assert b'"request_timeout"' in data


def test_the_rate_limit_applies_on_the_lane() -> None:
    env = {**_env("direct"), "PDP_RATE_LIMIT": "0.001", "PDP_RATE_LIMIT_BURST": "2"}
    server = launch_server(POLICIES / "todo", "--log-level", "warning", env=env)
    try:
        statuses = [_exchange(server, _request())[0] for _ in range(3)]
    finally:
        server.stop()
    assert [s[0] for s in statuses] == [200, 200, 429]
    assert int(statuses[2][1]["retry-after"]) >= 1


def test_a_bearer_jwt_is_left_to_the_application_which_checks_it(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    tokens = PepTokens(tmp_path_factory.mktemp("lane-jwt"))
    env = {**_env("direct"), "PDP_PEP_JWT_ISSUERS": PEP_ISSUER,
           "PDP_PEP_JWT_AUDIENCE": PDP_AUDIENCE, "PDP_PEP_JWKS_FILE": str(tokens.jwks_file)}
    server = launch_server(POLICIES / "todo", "--log-level", "warning", env=env)
    try:
        before = _direct_count(server, "evaluation")
        good = _exchange(server, _request(key=None, headers={
            "Authorization": f"Bearer {tokens.token()}"}))[0]
        forged = _exchange(server, _request(key=None, headers={
            "Authorization": f"Bearer {tokens.token(iss='https://evil.example.com')}"}))[0]
        assert _direct_count(server, "evaluation") == before  # both went through ASGI
        keyed = _exchange(server, _request())[0]
        assert _direct_count(server, "evaluation") == before + 1
    finally:
        server.stop()
    assert good[0] == 200 and json.loads(good[2]) == {"decision": True}
    assert forged[0] == 401 and "invalid_token" in forged[1]["www-authenticate"]
    assert keyed[0] == 200


def _todo_request(user: str, action: str, request_id: str) -> bytes:
    return _request(body=json.dumps({
        "subject": {"type": "user", "id": user}, "action": {"name": action},
        "resource": {"type": "todo", "id": "t1", "properties": {"ownerID": "someone-else"}},
    }).encode(), headers={"X-Request-ID": request_id})


# Rick (an admin) may delete another's todo, Morty (an editor) may not; both may read them
_RICK = "CiRmZDA2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs"
_MORTY = "CiRmZDE2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs"
_ASKED = [(_RICK, "can_delete_todo"), (_MORTY, "can_delete_todo"), (_MORTY, "can_read_todos")]


def test_lane_requests_pipelined_on_one_connection_are_answered_in_order(
        servers: tuple[Server, Server]) -> None:
    direct, asgi = servers
    raw = b"".join(_todo_request(u, a, f"r{i}") for i, (u, a) in enumerate(_ASKED))
    ours = _exchange(direct, raw, responses=len(_ASKED))
    assert [r[1].get("x-request-id") for r in ours] == ["r0", "r1", "r2"]
    assert [json.loads(r[2]) for r in ours] == [{"decision": True}, {"decision": False},
                                                {"decision": True}]
    assert [_comparable(r) for r in ours] == [
        _comparable(r) for r in _exchange(asgi, raw, responses=len(_ASKED))]


def test_requests_arriving_together_on_many_connections_each_get_their_own_answer(
        servers: tuple[Server, Server]) -> None:
    direct, _ = servers
    asked = [(_ASKED[i % len(_ASKED)], f"c{i}") for i in range(24)]
    socks = [socket.create_connection(("127.0.0.1", _port(direct)), timeout=10)
             for _ in asked]
    try:
        for sock, ((user, action), rid) in zip(socks, asked, strict=True):
            sock.sendall(_todo_request(user, action, rid))
        answers = []
        for sock in socks:
            data = b""
            while b"\r\n\r\n" not in data or not data.endswith(b"}"):
                chunk = sock.recv(65536)
                assert chunk, data
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            rid = re.search(rb"x-request-id: (\S+)", head)
            assert rid is not None
            answers.append((rid.group(1).decode(), json.loads(body)))
    finally:
        for sock in socks:
            sock.close()
    expected = {True: {"decision": True}, False: {"decision": False}}
    assert answers == [(rid, expected[action == "can_read_todos" or user == _RICK])
                       for (user, action), rid in asked]


def test_a_request_whose_client_leaves_at_once_is_still_decided_and_the_server_serves_on(
        servers: tuple[Server, Server]) -> None:
    direct, _ = servers
    before = _direct_count(direct, "evaluation")
    with socket.create_connection(("127.0.0.1", _port(direct)), timeout=10) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.sendall(_request())  # then reset: the answer has nowhere to go
    assert _exchange(direct, _request())[0][0] == 200
    assert _direct_count(direct, "evaluation") == before + 2
    assert b"Traceback" not in direct.log.read_bytes()
