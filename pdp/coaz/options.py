"""Deployment settings for COAZ mapping (docs/spec/coaz.md, "Dialect 2": subject anchoring, default
mappings, errors; "Open points in the drafts": deny codes, tokens without ``sub``).

Built once by the caller and passed to :func:`pdp.coaz.map_message`; nothing here reads the
environment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from pdp.coaz.outcome import Evaluate

__all__ = ["MappingOptions", "MethodLookup", "MethodRuleView", "RequestBuilder"]


class RequestBuilder(Protocol):
    """What builds a method's request (a :class:`~pdp.coaz.compiled.CompiledMapping`)."""

    def build(self, params: dict[str, Any], claims: dict[str, Any],
              options: MappingOptions) -> Evaluate: ...


class MethodRuleView(Protocol):
    """One entry of a method table (:class:`~pdp.coaz.methods.MethodRule`)."""

    @property
    def kind(self) -> Literal["allow", "deny", "map"]: ...

    @property
    def mapping(self) -> RequestBuilder | None: ...


class MethodLookup(Protocol):
    """A deployment's method table (:class:`~pdp.coaz.methods.MethodTable`)."""

    def get(self, method: str) -> MethodRuleView | None: ...


@dataclass(frozen=True, slots=True)
class MappingOptions:
    """How calls are mapped for one MCP server.

    ``server_resource``
        This server's resource identifier (RFC 8707 / RFC 9728). ``$token.aud`` in the default
        mappings resolves to it when the token's ``aud`` is a list that contains it; without it,
        only a single-valued ``aud`` resolves.
    ``identity_claim``
        The token claim that names the subject (``sub``; a deployment may name an on-behalf-of
        claim instead). Used by subject anchoring and by the default mappings.
    ``client_subject_type``
        ``subject.type`` used when the token is a client (machine) token and the subject is
        therefore the client (see ``client_claims``).
    ``client_claims``
        The claims that name the OAuth client the token was issued to, first present wins
        (``client_id``, then ``azp``). The default mappings put it at ``context.agent``.
    ``sub_is_client``
        A token whose ``sub`` equals its client (RFC 9068 §2.2: a client-credentials token
        SHOULD carry ``sub`` = the client id) is a client token too. A token with no ``sub``
        at all always is.
    ``deny_code_binding`` / ``deny_code_sep``
        JSON-RPC error code for a denial, per dialect of the mapping that produced the request.
        The binding's code is also used for default mappings and for unknown methods.
    ``mapping_error_code``
        JSON-RPC error code for a mapping error (invalid params).
    ``expose_act``
        Put the token's RFC 8693 ``act`` claim (the acting party in a delegation, e.g. the agent)
        at ``context.act`` of every request built. When on, ``context.act`` is always exactly the
        token's claim: a value a mapping put there is replaced, or removed when the token has none.
    ``methods``
        The deployment's method table (:class:`pdp.coaz.methods.MethodTable`), consulted before the
        default mappings.
    ``max_depth``
        The deepest nesting of arrays and objects a request body may have (the body itself is
        depth 1), as the PDP would refuse a deeper one; a mapping that copies deeper arguments or
        claims into the request is a mapping error.
    """

    server_resource: str | None = None
    identity_claim: str = "sub"
    client_subject_type: str = "client"
    client_claims: tuple[str, ...] = ("client_id", "azp")
    sub_is_client: bool = True
    deny_code_binding: int = -32001
    deny_code_sep: int = -32401
    mapping_error_code: int = -32602
    expose_act: bool = False
    max_depth: int = 32
    methods: MethodLookup | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.max_depth < 4:
            raise ValueError("max_depth must allow at least subject.properties (4)")
        if not self.identity_claim:
            raise ValueError("identity_claim must name a claim")
        if not self.client_subject_type:
            raise ValueError("client_subject_type must not be empty")
        if not self.client_claims or not all(self.client_claims):
            raise ValueError("client_claims must name at least one claim")
