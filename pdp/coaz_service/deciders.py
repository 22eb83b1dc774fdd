"""Who answers a mapped request (docs/spec/coaz.md, "Dialect 2": enforcement; AuthZEN 1.0
sections 6 and 7).

A :class:`Decider` takes the request body a COAZ mapping built and returns the
:class:`~pdp.coaz.verdict.Verdict`: :class:`LocalDecider` asks the in-process engine
(:class:`~pdp.service.PDPService`, which writes the decision log with the request id);
the gateway's remote decider asks another PDP over HTTP. Any failure on the way is an
:class:`~pdp.errors.UpstreamError` (JSON-RPC ``-32603``), never a permit.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from pdp.authzen import parse_evaluation
from pdp.coaz.verdict import EVALUATION_PATH, Verdict, verdict
from pdp.errors import PDPError, UpstreamError

if TYPE_CHECKING:
    from pdp.service import PDPService

__all__ = ["Decider", "LocalDecider"]

log = logging.getLogger("pdp.coaz")


class Decider(Protocol):
    async def decide(self, endpoint: str, body: Mapping[str, Any], *, explain: bool = True,
                     request_id: str | None = None) -> Verdict:
        """The verdict on ``body`` (for ``endpoint``); ``explain``: the decisions name their
        determining policies; ``request_id``: the id the decision log records."""
        ...

    async def aclose(self) -> None: ...


class LocalDecider:
    """The in-process engine. Decisions are CPU-bound and fast: they run inline
    (:meth:`decide_now` is the same off the event loop)."""

    def __init__(self, service: PDPService) -> None:
        self.service = service

    async def decide(self, endpoint: str, body: Mapping[str, Any], *, explain: bool = True,
                     request_id: str | None = None) -> Verdict:
        return self.decide_now(endpoint, body, explain=explain, request_id=request_id)

    def decide_now(self, endpoint: str, body: Mapping[str, Any], *, explain: bool = True,
                   request_id: str | None = None) -> Verdict:
        try:
            if endpoint == EVALUATION_PATH:
                answer: Any = self.service.evaluation(parse_evaluation(body), explain=explain,
                                                      request_id=request_id)
            else:
                answer = self.service.evaluations(body, explain=explain,
                                                  request_id=request_id)
        except PDPError as exc:
            log.warning("the engine refused a mapped request: %s", exc.message)
            raise UpstreamError(f"the PDP could not decide: {exc.message}") from None
        except Exception:
            log.exception("the engine failed")
            raise UpstreamError("the PDP failed") from None
        return verdict(endpoint, body, answer)

    def start(self) -> None:
        """Start the service's background work (entity-store poller, decision-log writer)."""
        self.service.start()

    async def aclose(self) -> None:
        self.service.close()
