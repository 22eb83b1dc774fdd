"""The token claims COAZ itself interprets (docs/spec/coaz.md, "Dialect 2": subject anchoring and
``$token.aud``; "Open points in the drafts": tokens without ``sub``; RFC 8693 ``act``).

Claims reach this module only after the token was validated (:mod:`pdp.tokens`).

* **Identity.** The subject is the value of the configured identity claim (``sub`` by default,
  or an on-behalf-of claim). A client (machine) token — one with no ``sub`` at all, or (with
  :attr:`MappingOptions.sub_is_client`, the default) one whose ``sub`` equals its client, as
  RFC 9068 §2.2 has client-credentials tokens carry — has the client as its subject
  (:attr:`MappingOptions.client_claims`: ``client_id``, else ``azp``) with ``subject.type``
  :attr:`MappingOptions.client_subject_type` (``client``), and a note saying so goes into the
  outcome's warnings (the decision log).
* **Audience.** ``$token.aud`` resolves to exactly one string: the configured server resource
  when ``aud`` (string or list) contains it; without a configured resource, a single-valued
  ``aud``. Anything else is a mapping error.
* **Delegation.** With :attr:`MappingOptions.expose_act`, the ``act`` claim goes to
  ``context.act``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pdp.coaz.options import MappingOptions
from pdp.errors import MappingError

__all__ = ["Identity", "resolve_identity", "resolve_audience", "client_of"]


@dataclass(frozen=True, slots=True)
class Identity:
    """Who the request is for: ``subject_type``/``subject_id``, and a note for the decision log
    when the subject had to be the client."""

    subject_type: str
    subject_id: str
    note: str | None = None

    def subject(self) -> dict[str, Any]:
        return {"type": self.subject_type, "id": self.subject_id}


def client_of(claims: Mapping[str, Any],
              names: tuple[str, ...] = ("client_id", "azp")) -> str | None:
    """The OAuth client the token was issued to (the first of ``names`` present)."""
    for name in names:
        value = claims.get(name)
        if isinstance(value, str) and value:
            return value
    return None


def resolve_identity(claims: Mapping[str, Any], options: MappingOptions) -> Identity:
    """The anchored subject for ``claims`` (see the module docstring)."""
    claim = options.identity_claim
    value = claims.get(claim)
    if isinstance(value, str) and value:
        if options.sub_is_client and claim == "sub" \
                and value == client_of(claims, options.client_claims):
            return Identity(options.client_subject_type, value,
                            note=f"token 'sub' is its client {value!r}: the subject is the "
                                 "client")
        return Identity("identity", value)
    if value is not None:
        raise MappingError(f"token claim {claim!r} is not a non-empty string", field=claim)
    if "sub" in claims:
        raise MappingError(f"token has no {claim!r} claim to take the subject from", field=claim)
    client = client_of(claims, options.client_claims)
    if client is None:
        raise MappingError("token has neither 'sub' nor 'client_id'/'azp': no subject", field=claim)
    return Identity(options.client_subject_type, client,
                    note=f"token has no 'sub' claim: the subject is the client {client!r}")


def resolve_audience(claims: Mapping[str, Any], options: MappingOptions) -> str:
    """``$token.aud`` as exactly one string."""
    aud = claims.get("aud")
    mine = options.server_resource
    if isinstance(aud, str):
        if mine is None or aud == mine:
            return aud
    elif isinstance(aud, list):
        if mine is not None and mine in aud:
            return mine
        if mine is None and len(aud) == 1 and isinstance(aud[0], str):
            return aud[0]
    elif aud is None:
        raise MappingError("token has no 'aud' claim", field="aud")
    raise MappingError("token 'aud' does not resolve to exactly this server's resource identifier",
                       field="aud")
