"""The COAZ flow, once for every transport (docs/spec/coaz.md, both dialects: enforcement and
errors; "Both dialects: the access token"; MCP "Authorization": scope challenge).

:class:`CoazCore` takes one client-to-server MCP JSON-RPC message, the server's tool catalogue
and the client's access token (validated here) or its already validated claims, and returns a
:class:`CoazResult`: the mapping's outcome (:func:`pdp.coaz.map_message`), the decisions of the
:class:`~pdp.coaz_service.deciders.Decider`, whether the message may be forwarded, and otherwise
the JSON-RPC error to answer (:mod:`pdp.coaz.denial`). Every decision carries the request id
into the decision log. ``/coaz/v1/*`` (:mod:`pdp.http.coaz`), the MCP gateway
(:mod:`pdp.gateway.authorize`) and ``pdp eval`` call it and only adapt their transport.

Fail closed: a missing or invalid token is ``unauthenticated``; a mapping error or a method no
rule allows is ``deny``; a decision that cannot be had (PDP unreachable, an answer that is not a
decision for every request) is JSON-RPC ``-32603``; only all-``true`` decisions allow.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from pdp.coaz import Deny, Evaluate, MappingOptions, Outcome, Pass, ToolCatalog, map_message
from pdp.coaz.denial import DenialStyle, answer_to, denial_error, error_object, missing_scopes
from pdp.coaz.verdict import Verdict
from pdp.coaz_service.config import token_settings
from pdp.coaz_service.deciders import Decider
from pdp.errors import InvalidField, MissingField, TokenError, UpstreamError
from pdp.settings import Settings
from pdp.tokens import TokenValidator, resource_metadata_url, www_authenticate

__all__ = ["CoazCore", "CoazResult", "Kind", "INTERNAL_ERROR"]

log = logging.getLogger("pdp.coaz")
decisions_log = logging.getLogger("pdp.coaz.decisions")

#: JSON-RPC "Internal error": the decision (or what it needs) is unavailable.
INTERNAL_ERROR = -32603
_UNAVAILABLE = "the authorization decision is unavailable"
_NO_TOKEN = "a valid access token is required"

Kind = Literal["pass", "evaluate", "deny", "unauthenticated"]


@dataclass(frozen=True, slots=True)
class CoazResult:
    """What became of one message. ``allow``: forward it. Otherwise ``error`` is the JSON-RPC
    error object to answer; ``denied``: a policy denied it (not a mapping error or an
    unavailable decision); ``scopes``: the scopes the denying decisions name (a step-up
    challenge); ``www_authenticate``: the challenge of an ``unauthenticated`` message."""

    kind: Kind
    allow: bool
    request_id: str | None = None
    mapped: Outcome | None = None
    decisions: tuple[Mapping[str, Any], ...] = ()
    error: Mapping[str, Any] | None = None
    denied: bool = False
    scopes: tuple[str, ...] = ()
    www_authenticate: str | None = None

    def answer(self, message: Mapping[str, Any], style: DenialStyle) -> dict[str, Any] | None:
        """The JSON-RPC answer to send instead of forwarding (``None`` for a notification)."""
        assert self.error is not None, "an allowed message is forwarded, not answered"
        return answer_to(message, self.error, denied=self.denied, style=style)


class CoazCore:
    """``options``: the mapping options of the default server (``server_resource``);
    ``style``: how denials are shown (``explain`` is the default of each call's);
    ``ask_policies``: ask the decider for the determining policies even when explanation is
    off (they name missing scopes, see :mod:`pdp.coaz.denial`); ``settings``: where tokens
    are validated from (``PDP_TOKEN_*``; the validator is built on the first token)."""

    def __init__(self, decider: Decider, options: MappingOptions, *,
                 style: DenialStyle | None = None, ask_policies: bool = True,
                 settings: Settings | None = None) -> None:
        self.decider = decider
        self.options = options
        self.style = style if style is not None else DenialStyle()
        self.ask_policies = ask_policies
        self._settings = settings
        self._validator: TokenValidator | None = None

    # -- steps ------------------------------------------------------------------------------

    def options_for(self, server: str | None) -> MappingOptions:
        """The mapping options for the MCP server ``server`` (``None``: the default one)."""
        if server is None or server == self.options.server_resource:
            return self.options
        return replace(self.options, server_resource=server)

    def _token_validator(self) -> TokenValidator:
        """The one token validator, built from the settings on first use: its key sources
        are the configured issuers', whatever the token or the server named."""
        if self._validator is None:
            if self._settings is None:
                raise InvalidField("this PDP cannot validate tokens: no token settings",
                                   field="token")
            try:
                self._validator = TokenValidator(
                    token_settings(self._settings, self._settings.resource_id))
            except ValueError as exc:
                raise InvalidField(f"this PDP cannot validate tokens: {exc}",
                                   field="token") from None
        return self._validator

    @staticmethod
    def _challenge(server: str | None, error: Literal["invalid_token"] | None) -> str:
        if server is not None:
            try:
                return www_authenticate(resource_metadata_url(server), error=error)
            except ValueError:
                pass
        return 'Bearer error="invalid_token"' if error else "Bearer"

    def _unauthenticated(self, server: str | None, error: Literal["invalid_token"] | None,
                         request_id: str | None) -> CoazResult:
        return CoazResult("unauthenticated", False, request_id,
                          error=error_object(self.options.deny_code_binding, _NO_TOKEN),
                          www_authenticate=self._challenge(server, error))

    async def claims(self, *, claims: Mapping[str, Any] | None, token: str | None,
                     server: str | None, request_id: str | None = None,
                     ) -> Mapping[str, Any] | CoazResult:
        """The validated claims: ``claims`` as given (the caller vouches for them), or those
        of ``token`` validated for the audience ``server``; else an ``unauthenticated``
        result."""
        if claims is not None:
            return claims
        if token is None:
            return self._unauthenticated(server, None, request_id)
        if server is None:
            raise MissingField("server (or PDP_RESOURCE_ID) is required to validate a token: "
                               "it is the audience", field="server")
        try:
            return await self._token_validator().validate(token, audience=server)
        except TokenError as exc:
            log.info("COAZ: rejected an access token: %s", exc.message)
            return self._unauthenticated(server, "invalid_token", request_id)

    async def _map(self, message: Any, claims: Mapping[str, Any], catalog: ToolCatalog,
                   options: MappingOptions, off_loop: bool) -> Outcome:
        if off_loop:
            return await asyncio.to_thread(map_message, message, claims, catalog, options)
        return map_message(message, claims, catalog, options)

    # -- the entry points -------------------------------------------------------------------

    async def map(self, message: Any, catalog: ToolCatalog, *,
                  claims: Mapping[str, Any] | None = None, token: str | None = None,
                  server: str | None = None) -> CoazResult:
        """The mapping alone (no decision): ``mapped`` says what the PEP must do."""
        server = server if server is not None else self.options.server_resource
        validated = await self.claims(claims=claims, token=token, server=server)
        if isinstance(validated, CoazResult):
            return validated
        outcome = await self._map(message, validated, catalog, self.options_for(server), False)
        if isinstance(outcome, Pass):
            return CoazResult("pass", True, mapped=outcome)
        if isinstance(outcome, Deny):
            return CoazResult("deny", False, mapped=outcome,
                              error=error_object(outcome.code, outcome.message))
        return CoazResult("evaluate", False, mapped=outcome)

    async def authorize(self, message: Any, catalog: ToolCatalog, *,
                        claims: Mapping[str, Any] | None = None, token: str | None = None,
                        server: str | None = None, request_id: str | None = None,
                        explain: bool | None = None, off_loop: bool = False) -> CoazResult:
        """Map ``message`` and decide it. ``request_id`` is recorded with every decision;
        ``explain`` (default: the style's) puts the reason and the decisions in the error's
        ``data``; ``off_loop`` maps (and, with the in-process engine, decides) in a worker
        thread, so that a batch does not hold the event loop for its whole length."""
        server = server if server is not None else self.options.server_resource
        validated = await self.claims(claims=claims, token=token, server=server,
                                      request_id=request_id)
        if isinstance(validated, CoazResult):
            return validated
        outcome = await self._map(message, validated, catalog, self.options_for(server),
                                  off_loop)
        what = _what(message)
        if isinstance(outcome, Pass):
            return CoazResult("pass", True, request_id, outcome)
        if isinstance(outcome, Deny):
            decisions_log.info("deny %s: %s", what, outcome.message)
            return CoazResult("deny", False, request_id, outcome,
                              error=error_object(outcome.code, outcome.message))
        assert isinstance(outcome, Evaluate)
        explained = self.style.explain if explain is None else explain
        try:
            verdict = await self._decide(outcome, explained or self.ask_policies, request_id,
                                         off_loop)
        except UpstreamError as exc:
            log.warning("%s not decided: %s", what, exc.message)
            return CoazResult("evaluate", False, request_id, outcome,
                              error=error_object(INTERNAL_ERROR, _UNAVAILABLE))
        if outcome.warnings:
            decisions_log.info("%s: %s", what, "; ".join(outcome.warnings))
        if verdict.allowed:
            decisions_log.debug("permit %s (%s) %s", what, outcome.dialect, _who(outcome.body))
            return CoazResult("evaluate", True, request_id, outcome, verdict.decisions)
        decisions_log.info("deny %s (%s) %s", what, outcome.dialect, _who(outcome.body))
        return CoazResult("evaluate", False, request_id, outcome, verdict.decisions,
                          error=denial_error(outcome.deny_code, verdict, explained),
                          denied=True, scopes=missing_scopes(verdict))

    async def _decide(self, outcome: Evaluate, explain: bool, request_id: str | None,
                      off_loop: bool) -> Verdict:
        decide_now = getattr(self.decider, "decide_now", None)
        if off_loop and decide_now is not None:
            return await asyncio.to_thread(decide_now, outcome.endpoint, outcome.body,
                                           explain=explain, request_id=request_id)
        return await self.decider.decide(outcome.endpoint, outcome.body, explain=explain,
                                         request_id=request_id)

    async def aclose(self) -> None:
        """Close the token validator (the decider belongs to whoever made it)."""
        if self._validator is not None:
            await self._validator.aclose()
            self._validator = None


def _who(body: Mapping[str, Any]) -> str:
    """Subject, client and actor of a request, for the decisions log line."""
    subject = body.get("subject")
    context = body.get("context")
    context = context if isinstance(context, Mapping) else {}
    act = context.get("act")
    actor = act.get("sub") if isinstance(act, Mapping) else None
    who = (f"{subject.get('type')}:{subject.get('id')}" if isinstance(subject, Mapping)
           else None)
    return f"subject={who!r} client={context.get('agent')!r} actor={actor!r}"


def _what(message: Any) -> str:
    if not isinstance(message, Mapping):
        return "a malformed message"
    method = message.get("method")
    params = message.get("params")
    if method == "tools/call" and isinstance(params, dict):
        return f"tools/call {params.get('name')!r}"
    return str(method)
