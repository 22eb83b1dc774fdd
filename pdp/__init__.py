"""An OpenID AuthZEN 1.0 Policy Decision Point backed by Cedar, with COAZ support for MCP.

The names below are loaded on first use (PEP 562), so that importing a light subpackage such as
``pdp.authzen`` or ``pdp.coaz`` does not pull in the service, its database or Cedar.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pdp.authzen import Action, Decision, Entity, EvaluationRequest
    from pdp.errors import PDPError
    from pdp.service import PDPService
    from pdp.settings import Settings

__all__ = ["Action", "Decision", "Entity", "EvaluationRequest", "PDPError", "PDPService",
           "Settings", "__version__"]

__version__ = "0.1.0"

_HOMES = {
    "Action": "pdp.authzen",
    "Decision": "pdp.authzen",
    "Entity": "pdp.authzen",
    "EvaluationRequest": "pdp.authzen",
    "PDPError": "pdp.errors",
    "PDPService": "pdp.service",
    "Settings": "pdp.settings",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'pdp' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
