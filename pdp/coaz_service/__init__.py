"""The COAZ flow at the service layer: one entry point for every transport.

:class:`CoazCore` maps an MCP message (:mod:`pdp.coaz`), validates the access token
(:mod:`pdp.tokens`), asks a :class:`Decider` (the in-process :class:`LocalDecider`, or the
gateway's remote PDP) and builds the outcome. ``/coaz/v1/*`` (:mod:`pdp.http.coaz`), the MCP
gateway (:mod:`pdp.gateway`) and ``pdp eval`` call it; they adapt their transport only::

    core = CoazCore(LocalDecider(service), mapping_options(settings, resource))
    result = await core.authorize(message, catalog, claims=claims, request_id=rid)
    if not result.allow:
        answer = result.answer(message, core.style)   # the JSON-RPC answer
"""

from pdp.coaz_service.config import mapping_options, method_table, token_settings
from pdp.coaz_service.core import INTERNAL_ERROR, CoazCore, CoazResult
from pdp.coaz_service.deciders import Decider, LocalDecider
from pdp.coaz_service.wire import CoazCall, authorize_body, map_body, parse_call

__all__ = [
    "CoazCall",
    "CoazCore",
    "CoazResult",
    "Decider",
    "INTERNAL_ERROR",
    "LocalDecider",
    "authorize_body",
    "map_body",
    "mapping_options",
    "method_table",
    "parse_call",
    "token_settings",
]
