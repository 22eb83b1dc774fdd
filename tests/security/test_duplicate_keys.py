"""A body with a duplicate object key anywhere is a 400 naming the key, on every endpoint."""

from __future__ import annotations

from pathlib import Path

import pytest

from pdp.errors import DuplicateKey
from pdp.gateway.jsonrpc import BodyError, parse_messages
from tests.conftest import POLICIES
from tests.security.conftest import client_of, service_on

BOB_THEN_ALICE = (b'{"subject": {"type": "user", "id": "bob"}, '
                  b'"subject": {"type": "user", "id": "alice"}, '
                  b'"action": {"name": "edit"}, "resource": {"type": "document", "id": "roadmap"}}')
NESTED = (b'{"subject": {"type": "user", "id": "bob"}, "action": {"name": "view"}, '
          b'"resource": {"type": "document", "id": "x"}, '
          b'"context": {"a": [{"deep": 1, "deep": 2}]}}')
TOKEN = "admin-t0ken"


@pytest.mark.asyncio
@pytest.mark.parametrize(("path", "body", "key"), [
    ("/access/v1/evaluation", BOB_THEN_ALICE, "subject"),
    ("/access/v1/evaluation", NESTED, "deep"),
    ("/access/v1/evaluations", b'{"evaluations": [], "evaluations": []}', "evaluations"),
    ("/access/v1/search/resource", BOB_THEN_ALICE, "subject"),
    ("/coaz/v1/map", b'{"message": {}, "message": {}}', "message"),
    ("/admin/entities", b'{"uid": {"type": "a", "id": "1", "id": "2"}}', "id"),
])
async def test_a_duplicate_key_is_refused_with_its_name(
        tmp_path: Path, path: str, body: bytes, key: str) -> None:
    service = service_on(POLICIES / "default", admin_token=TOKEN)
    async with client_of(service) as client:
        method = client.put if path.startswith("/admin") else client.post
        answer = await method(path, content=body, headers={
            "content-type": "application/json", "authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 400, answer.text
    error = answer.json()
    assert error["error"] == "duplicate_key"
    assert repr(key) in error["message"] or f'"{key}"' in error["message"], error


def test_the_gateway_refuses_a_json_rpc_body_with_a_duplicate_key() -> None:
    with pytest.raises(BodyError) as caught:
        parse_messages(b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", '
                       b'"params": {"name": "read", "name": "delete"}}', None)
    assert "name" in caught.value.message


def test_duplicate_key_is_a_request_error() -> None:
    assert DuplicateKey("x").status == 400
