"""A client request's headers, read once (MCP "Security Best Practices": session hijacking).

The gateway decides on some headers (``Authorization``, ``Mcp-Session-Id``,
``MCP-Protocol-Version``, ...) and forwards some of them. If a header could be read one way for
the decision and another way for the upstream (the first of two ``Mcp-Session-Id`` headers for
the owner check, the last for the upstream), a client could pass the check with its own session
and act in another's. So the headers are read here, once, into an :class:`Incoming`:

* a header the gateway decides on or forwards as a single value, sent more than once, is
  refused (:class:`DuplicateHeader`, answered with HTTP 400) whatever the values;
* the list-valued ones (``Accept``, ``tracestate``) are joined with ``, `` (RFC 9110 5.3);
* the headers sent upstream (:attr:`Incoming.forward`) are built from the same values the
  decision reads: the session id checked is the session id forwarded, by construction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from pdp.gateway.upstream import REQUEST_HEADERS, forwardable

__all__ = ["DuplicateHeader", "Incoming"]

#: Headers joined when repeated (list-valued, RFC 9110 section 5.3); every other header the
#: gateway reads or forwards must appear at most once.
_LISTS: Final = frozenset({"accept", "tracestate"})
#: Read by the gateway itself (never forwarded as they came).
_READ: Final = frozenset({"authorization", "content-length", "transfer-encoding"})
_NAMES: Final = {"mcp-session-id": "Mcp-Session-Id", "mcp-protocol-version":
                 "MCP-Protocol-Version", "authorization": "Authorization",
                 "content-type": "Content-Type", "content-length": "Content-Length"}


class DuplicateHeader(Exception):
    """A header the gateway decides on or forwards was sent more than once."""

    def __init__(self, name: str) -> None:
        self.name = _NAMES.get(name, "-".join(p.capitalize() for p in name.split("-")))
        self.message = f"the {self.name} header was sent more than once"
        super().__init__(self.message)


@dataclass(frozen=True, slots=True)
class Incoming:
    """The headers of one client request as the gateway uses them."""

    authorization: str | None
    session_id: str | None
    protocol_version: str | None
    content_length: str | None
    forward: Mapping[str, str]
    #: ``X-Request-ID``: the decisions of this request carry it into the decision log
    request_id: str | None = None

    @classmethod
    def parse(cls, raw: Iterable[tuple[bytes, bytes]]) -> Incoming:
        """From the ASGI scope's ``headers``; raises :class:`DuplicateHeader`."""
        values: dict[str, str] = {}
        for name_bytes, value_bytes in raw:
            name = name_bytes.decode("latin-1").lower()
            if not (name in _READ or name in REQUEST_HEADERS or name.startswith("mcp-param-")):
                continue
            value = value_bytes.decode("latin-1")
            if name in values:
                if name not in _LISTS:
                    raise DuplicateHeader(name)
                values[name] = f"{values[name]}, {value}"
            else:
                values[name] = value
        return cls(authorization=values.get("authorization"),
                   session_id=values.get("mcp-session-id"),
                   protocol_version=values.get("mcp-protocol-version"),
                   content_length=values.get("content-length"),
                   forward=forwardable(values.items()),
                   request_id=values.get("x-request-id"))
