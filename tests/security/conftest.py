"""Helpers of the adversarial suite: a PDP on a policy set written for one test, asked over
its HTTP API."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from pdp.http import create_app
from pdp.service import PDPService
from tests.conftest import make_service

EVALUATION = "/access/v1/evaluation"
EVALUATIONS = "/access/v1/evaluations"

#: `context.amount > 10000` guards transfers; everything else is allowed.
TRANSFERS = """\
@id("allow-all")
permit (principal, action, resource);

@id("big-transfers")
forbid (principal, action == Action::"transfer", resource)
when { context.amount > 10000 };
"""


def write_set(directory: Path, files: Mapping[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)
    return directory


def service_on(directory: Path, files: Mapping[str, str] | None = None,
               **settings: Any) -> PDPService:
    if files is not None:
        write_set(directory, files)
    return make_service(directory, **settings)


@asynccontextmanager
async def client_of(service: PDPService) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(service))
    async with httpx.AsyncClient(transport=transport, base_url="http://pdp.test") as client:
        yield client


def request(subject: tuple[str, str], action: str, resource: tuple[str, str], *,
            context: Mapping[str, Any] | None = None,
            subject_properties: Mapping[str, Any] | None = None,
            resource_properties: Mapping[str, Any] | None = None,
            action_properties: Mapping[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "subject": {"type": subject[0], "id": subject[1]},
        "action": {"name": action},
        "resource": {"type": resource[0], "id": resource[1]},
    }
    if subject_properties is not None:
        body["subject"]["properties"] = dict(subject_properties)
    if resource_properties is not None:
        body["resource"]["properties"] = dict(resource_properties)
    if action_properties is not None:
        body["action"]["properties"] = dict(action_properties)
    if context is not None:
        body["context"] = dict(context)
    return body
