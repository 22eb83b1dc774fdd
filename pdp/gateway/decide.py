"""Asking the PDP and enforcing the answer (docs/spec/coaz.md, "Dialect 2": errors and enforcement;
AuthZEN 1.0 sections 6 and 7).

A :class:`Decider` takes the request body a COAZ mapping built and returns the decisions:
:class:`LocalDecider` runs the in-process engine (:class:`~pdp.service.PDPService`),
:class:`RemoteDecider` calls a remote AuthZEN PDP's ``/access/v1/evaluation(s)`` with httpx.
:func:`verdict` enforces: forward only when every decision is ``true``; a PDP that cannot be
reached or answers something that is not a decision raises
:class:`~pdp.errors.UpstreamError` (JSON-RPC ``-32603``), never a permit.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from pdp.errors import PDPError, UpstreamError

if TYPE_CHECKING:
    import httpx

    from pdp.service import PDPService

__all__ = [
    "Decider",
    "LocalDecider",
    "RemoteDecider",
    "Verdict",
    "EVALUATION_PATH",
    "EVALUATIONS_PATH",
    "decision_reason",
    "verdict",
]

log = logging.getLogger("pdp.gateway")

EVALUATION_PATH = "/access/v1/evaluation"
EVALUATIONS_PATH = "/access/v1/evaluations"
#: Where a reason for the client is looked for. ``reason_admin`` is for the PDP's operators
#: (AuthZEN 1.0 section 5.5.1): it is never shown to an MCP client.
_REASON_KEYS = ("reason", "reason_user", "message")
_ADMIN_ONLY = "reason_admin"
_MAX_REASON = 200


@dataclass(frozen=True, slots=True)
class Verdict:
    """Every decision of one message, and whether it may be forwarded."""

    allowed: bool
    decisions: tuple[Mapping[str, Any], ...]
    reason: str | None = None


class Decider(Protocol):
    async def decide(self, endpoint: str, body: Mapping[str, Any]) -> Verdict: ...

    async def aclose(self) -> None: ...


def _text(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()[:_MAX_REASON]
    if isinstance(value, Mapping):  # {"en": "..."} or {"id": ..., "reason_user": {...}}
        for key in ("en", *_REASON_KEYS):
            if key in value and (text := _text(value[key])) is not None:
                return text
        for key, item in value.items():
            if key != _ADMIN_ONLY and (text := _text(item)) is not None:
                return text
    return None


def decision_reason(decision: Mapping[str, Any]) -> str | None:
    """A human-readable reason from a decision's ``context`` (``reason``, ``reason_user``,
    ``message``; a string or a per-language object), if it has one; never ``reason_admin``.
    Policy ids (the ``reasons`` list of this PDP's explanations) are not a reason to show."""
    context = decision.get("context")
    if not isinstance(context, Mapping):
        return None
    for key in _REASON_KEYS:
        if key in context and (text := _text(context[key])) is not None:
            return text
    return None


def verdict(endpoint: str, body: Mapping[str, Any], answer: Any) -> Verdict:
    """Check a PDP answer against the request; every decision must be a boolean ``true``."""
    if endpoint == EVALUATION_PATH:
        decisions: Sequence[Any] = [answer]
        expected = 1
    else:
        items = body.get("evaluations")
        expected = len(items) if isinstance(items, list) else 0
        if expected == 0:  # an empty batch is answered like a single evaluation
            decisions = [answer]
            expected = 1
        elif not isinstance(answer, Mapping) or not isinstance(answer.get("evaluations"), list):
            raise UpstreamError("the PDP answered without an evaluations array")
        else:
            decisions = answer["evaluations"]
    if not decisions or len(decisions) > expected:
        raise UpstreamError(f"the PDP answered {len(decisions)} decisions for {expected} requests")
    checked: list[Mapping[str, Any]] = []
    for d in decisions:
        if not isinstance(d, Mapping) or not isinstance(d.get("decision"), bool):
            raise UpstreamError("the PDP answered something that is not a decision")
        checked.append(d)
    if len(checked) < expected:  # only a semantic that stops early may answer fewer
        options = body.get("options")
        semantic = options.get("evaluations_semantic") if isinstance(options, Mapping) else None
        stop = {"deny_on_first_deny": False, "permit_on_first_permit": True}.get(str(semantic))
        if stop is None or checked[-1]["decision"] is not stop:
            raise UpstreamError(f"the PDP answered {len(checked)} decisions for {expected} "
                                "requests")
    denied = next((d for d in checked if d["decision"] is not True), None)
    if denied is None:
        return Verdict(True, tuple(checked))
    return Verdict(False, tuple(checked), decision_reason(denied))


class LocalDecider:
    """The in-process engine. Decisions are CPU-bound and fast: they run inline."""

    def __init__(self, service: PDPService) -> None:
        self.service = service

    async def decide(self, endpoint: str, body: Mapping[str, Any]) -> Verdict:
        return self.decide_now(endpoint, body)

    def decide_now(self, endpoint: str, body: Mapping[str, Any]) -> Verdict:
        from pdp.authzen import parse_evaluation

        explain = True  # the determining policies name missing scopes (pdp.gateway.denial)
        try:
            if endpoint == EVALUATION_PATH:
                answer: Any = self.service.evaluation(parse_evaluation(body), explain=explain)
            else:
                answer = self.service.evaluations(body, explain=explain)
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


class RemoteDecider:
    """A remote AuthZEN PDP at ``base_url`` (its ``/access/v1/evaluation(s)`` endpoints)."""

    def __init__(self, client: httpx.AsyncClient, base_url: str, *,
                 token: str | None = None) -> None:
        self.client = client
        self.base_url = base_url.rstrip("/")
        self.headers = {"content-type": "application/json", "accept": "application/json"}
        if token:
            self.headers["authorization"] = f"Bearer {token}"

    async def decide(self, endpoint: str, body: Mapping[str, Any]) -> Verdict:
        import httpx

        try:
            response = await self.client.post(self.base_url + endpoint,
                                              content=orjson.dumps(body), headers=self.headers)
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
