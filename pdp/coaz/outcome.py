"""What a PEP does with one MCP message (docs/spec/coaz.md, "Dialect 2": pass-through, errors,
enforcement).

* :class:`Pass` — forward without asking the PDP (``ping``, ``notifications/*``, responses).
* :class:`Evaluate` — ask the PDP with exactly one of ``evaluation`` (an
  ``/access/v1/evaluation`` body) or ``evaluations`` (an ``/access/v1/evaluations`` body);
  forward only if every decision is ``true``, else answer JSON-RPC error ``deny_code``.
* :class:`Deny` — answer JSON-RPC error ``code`` with ``message`` without asking the PDP.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Dialect", "Pass", "Evaluate", "Deny", "Outcome"]

#: Where a request body came from: a tool's SEP mapping (``x-coaz-mapping``), a tool's binding
#: mapping (``x-authzen-mapping``), or the binding's default mapping for the method.
Dialect = Literal["sep", "binding", "default"]


@dataclass(frozen=True, slots=True)
class Pass:
    """Forward the message; no PDP call."""


@dataclass(frozen=True, slots=True)
class Evaluate:
    """Ask the PDP. ``warnings`` are for the decision log (never for the client)."""

    evaluation: dict[str, Any] | None
    evaluations: dict[str, Any] | None
    dialect: Dialect
    warnings: tuple[str, ...] = ()
    deny_code: int = -32001

    def __post_init__(self) -> None:
        if (self.evaluation is None) == (self.evaluations is None):
            raise ValueError("exactly one of evaluation and evaluations must be set")

    @property
    def body(self) -> dict[str, Any]:
        """The request body, whichever endpoint it is for."""
        body = self.evaluation if self.evaluation is not None else self.evaluations
        assert body is not None
        return body

    @property
    def endpoint(self) -> str:
        """The AuthZEN endpoint path the body is for."""
        return "/access/v1/evaluation" if self.evaluation is not None else "/access/v1/evaluations"


@dataclass(frozen=True, slots=True)
class Deny:
    """Answer the JSON-RPC error ``code`` (``id`` echoed or ``null``) without a PDP call."""

    code: int
    message: str
    field: str | None = field(default=None, compare=False)


Outcome = Pass | Evaluate | Deny
