"""A remote AuthZEN PDP as the gateway's decider (AuthZEN 1.0 sections 6, 7 and 10.1).

:class:`RemoteDecider` calls ``/access/v1/evaluation(s)`` of another PDP with httpx, carrying
the request id as ``X-Request-ID``; :func:`~pdp.coaz.verdict.verdict` enforces its answer. A
PDP that cannot be reached or answers something that is not a decision raises
:class:`~pdp.errors.UpstreamError` (JSON-RPC ``-32603``), never a permit. The in-process
engine's decider is :class:`~pdp.coaz_service.LocalDecider`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import httpx
import orjson

from pdp.coaz.verdict import Verdict, verdict
from pdp.errors import UpstreamError

__all__ = ["RemoteDecider"]

log = logging.getLogger("pdp.gateway")


class RemoteDecider:
    """A remote AuthZEN PDP at ``base_url`` (its ``/access/v1/evaluation(s)`` endpoints)."""

    def __init__(self, client: httpx.AsyncClient, base_url: str, *,
                 token: str | None = None) -> None:
        self.client = client
        self.base_url = base_url.rstrip("/")
        self.headers = {"content-type": "application/json", "accept": "application/json"}
        if token:
            self.headers["authorization"] = f"Bearer {token}"

    async def decide(self, endpoint: str, body: Mapping[str, Any], *, explain: bool = True,
                     request_id: str | None = None) -> Verdict:
        """``request_id`` goes to the PDP as ``X-Request-ID`` (its decision log records it);
        ``explain`` is the remote PDP's own setting (``PDP_EXPLAIN``) and is not asked for."""
        headers = self.headers
        if request_id is not None:
            headers = {**headers, "x-request-id": request_id}
        try:
            response = await self.client.post(self.base_url + endpoint,
                                              content=orjson.dumps(body), headers=headers)
        except httpx.HTTPError as exc:
            log.warning("PDP %s unreachable: %s", self.base_url, exc.__class__.__name__)
            raise UpstreamError("the PDP could not be reached") from None
        if response.status_code != 200:
            log.warning("PDP %s answered HTTP %d", self.base_url, response.status_code)
            raise UpstreamError(f"the PDP answered HTTP {response.status_code}")
        try:
            answer = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise UpstreamError("the PDP answered something that is not JSON") from None
        return verdict(endpoint, body, answer)

    async def aclose(self) -> None:
        await self.client.aclose()
