"""Binding MCP sessions to the people who opened them (MCP "Security Best Practices": session
hijacking — a session id must not let one user act in another user's session).

When an ``initialize`` through the gateway creates a session (``Mcp-Session-Id`` on its
response), the session is bound to the token's principal (issuer and subject, or the client
for a token without ``sub``). A later request naming that session with another principal's
token is answered like an unknown session (HTTP 404). Sessions this gateway replica has not
seen created are not checked (another replica may have); the table is bounded (LRU).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pdp.caches import LRU

__all__ = ["SessionBindings", "principal_of"]


def principal_of(claims: Mapping[str, Any], identity_claim: str = "sub") -> str:
    subject = claims.get(identity_claim) or claims.get("sub")
    if subject is None:
        subject = "client:" + str(claims.get("client_id") or claims.get("azp") or "")
    return f"{claims.get('iss', '')}\x00{subject}"


class SessionBindings:
    def __init__(self, capacity: int = 100_000) -> None:
        self.capacity = capacity
        self._owners: LRU[str, str] = LRU(capacity)  # the event loop's thread only

    def bind(self, session_id: str, principal: str) -> None:
        self._owners.put(session_id, principal)

    def allows(self, session_id: str, principal: str) -> bool:
        owner = self._owners.get(session_id)
        if owner is None:
            return True
        return owner == principal

    def forget(self, session_id: str) -> None:
        self._owners.pop(session_id, None)
