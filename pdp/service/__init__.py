"""The composition root: settings -> entity store, policy reloads, engine, search, decision log.

:class:`~pdp.service.core.PDPService` wires the PDP once (:mod:`pdp.service.core`); every
policy reload goes through :mod:`pdp.service.reload`; the policy-set test runner of
``pdp test`` is :mod:`pdp.service.testing`. ``PDPService`` is loaded on first use (PEP 562),
so that the test runner does not pull in the decision log and its database.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pdp.service.core import PDPService

__all__ = ["PDPService"]


def __getattr__(name: str) -> Any:
    if name != "PDPService":
        raise AttributeError(f"module 'pdp.service' has no attribute {name!r}")
    return importlib.import_module("pdp.service.core").PDPService
