"""An authorizing MCP gateway (docs/spec/coaz.md; MCP "Transports": Streamable HTTP; MCP
"Authorization").

A reverse proxy for one Streamable HTTP MCP server: it validates each client's bearer token,
maps every client-to-server message to AuthZEN requests with the COAZ mapper
(:mod:`pdp.coaz`), asks the in-process engine or a remote PDP, and forwards only what is
permitted. The COAZ flow (mapping, decision, the JSON-RPC error) is
:class:`pdp.coaz_service.CoazCore`'s, the one ``/coaz/v1/*`` runs too; token validation is
:mod:`pdp.tokens`'; this package is the MCP transport around them::

    gateway = Gateway.from_settings(settings)
    app = create_gateway_app(gateway)      # an ASGI app; run it with uvicorn
"""

from pdp.coaz.verdict import Verdict, decision_reason
from pdp.coaz_service import Decider, LocalDecider
from pdp.gateway.app import create_gateway_app
from pdp.gateway.remote import RemoteDecider
from pdp.gateway.runtime import Gateway, GatewayConfig

__all__ = [
    "Decider",
    "Gateway",
    "GatewayConfig",
    "LocalDecider",
    "RemoteDecider",
    "Verdict",
    "create_gateway_app",
    "decision_reason",
]
