"""AuthZEN 1.0 information model (section 5): Subject, Resource, Action, Context, Decision.

Immutable values parsed from the wire once; the rest of the PDP works with these, never with
raw JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Entity", "Action", "EvaluationRequest", "Decision"]


@dataclass(frozen=True, slots=True)
class Entity:
    """A Subject or a Resource: ``type`` + ``id`` + optional ``properties``."""

    type: str
    id: str
    properties: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Action:
    name: str
    properties: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class EvaluationRequest:
    """One access evaluation: the four SARC parts."""

    subject: Entity
    action: Action
    resource: Entity
    context: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """The PDP's answer to one evaluation.

    ``reasons`` are the determining policies (their ``@id`` when they have one); ``errors``
    the evaluation errors Cedar reported; ``error`` a problem that prevented evaluation
    (always a deny); ``outcome`` says why: ``permit``, ``forbid`` (a forbid policy matched),
    ``no_permit`` (no permit policy matched) or ``error``.
    """

    allowed: bool
    outcome: str = "no_permit"
    reasons: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    error: Mapping[str, Any] | None = None

    def to_wire(self, explain: bool = False) -> dict[str, Any]:
        """The response body: exactly ``{"decision": b}`` unless reasons were asked for."""
        if self.error is not None:
            ctx: dict[str, Any] = {"error": dict(self.error)}
            if explain:
                ctx["outcome"] = self.outcome
            return {"decision": False, "context": ctx}
        if not explain:
            return {"decision": self.allowed}
        ctx = {"outcome": self.outcome, "reasons": list(self.reasons)}
        if self.errors:
            ctx["errors"] = list(self.errors)
        return {"decision": self.allowed, "context": ctx}
