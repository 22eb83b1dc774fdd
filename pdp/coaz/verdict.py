"""Enforcing a PDP's answer to a mapped request (docs/spec/coaz.md, "Dialect 2": errors and
enforcement; AuthZEN 1.0 sections 6 and 7).

:func:`verdict` enforces: forward only when every decision is ``true``; an answer that is not a
decision for every request raises :class:`~pdp.errors.UpstreamError` (JSON-RPC ``-32603``),
never a permit. :func:`decision_reason` is the reason a client may read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pdp.errors import UpstreamError

__all__ = [
    "Verdict",
    "EVALUATION_PATH",
    "EVALUATIONS_PATH",
    "decision_reason",
    "verdict",
]

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
