"""RFC 7662 token introspection for opaque access tokens (docs/spec/coaz.md, "Both dialects: the
access token": an opaque token may be resolved through introspection).

The token is POSTed (``token``, ``token_type_hint=access_token``) with the configured client
authentication (HTTP Basic, or ``client_id``/``client_secret`` in the form). The answer must be
a JSON object with ``active: true``; its ``iss`` (if any) must be an accepted issuer, its
``aud`` must name this server (unless the settings waive an absent ``aud``), and
``exp``/``nbf``/``iat`` (if any) are checked with the leeway. The answer without ``active``
becomes the claims; an answer accepted without ``aud`` gets the audience it was accepted for
(so ``$token.aud`` names this server). :func:`fetch_answer` asks the endpoint,
:func:`check_answer` checks an answer for one audience: the validator remembers active
answers between the two (see :attr:`TokenSettings.cache_seconds`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
from joserfc.errors import ClaimError, JoseError
from joserfc.jwt import ClaimsOption, JWTClaimsRegistry

from pdp.errors import TokenError, UpstreamError
from pdp.tokens.settings import IntrospectionSettings, TokenSettings

__all__ = ["check_answer", "fetch_answer", "introspect"]

_MAX_BYTES = 1_048_576


async def introspect(token: str, settings: TokenSettings, client: httpx.AsyncClient,
                     now: Callable[[], int]) -> dict[str, Any]:
    """The claims of an active token; :class:`TokenError` if it is not active or not for this
    server, :class:`UpstreamError` if the endpoint fails."""
    config = settings.introspection
    assert config is not None and settings.audience is not None
    answer = await fetch_answer(token, config, client, settings.http_timeout)
    return check_answer(answer, config, settings.issuers, settings.audience,
                        settings.leeway, now)


async def fetch_answer(token: str, config: IntrospectionSettings, client: httpx.AsyncClient,
                       timeout: float) -> dict[str, Any]:
    """The endpoint's answer about ``token`` (a JSON object); :class:`UpstreamError` if the
    endpoint fails."""
    return await _post(token, config, client, timeout)


def check_answer(answer: dict[str, Any], config: IntrospectionSettings,
                 issuers: tuple[str, ...], audience: str, leeway: int,
                 now: Callable[[], int]) -> dict[str, Any]:
    """The claims of an active answer for ``audience``; :class:`TokenError` otherwise."""
    if answer.get("active") is not True:
        raise TokenError("introspection: the token is not active")
    options: dict[str, ClaimsOption] = {"iss": {"values": list(issuers)}}
    if config.require_audience or "aud" in answer:
        options["aud"] = {"essential": True, "value": audience}
    try:
        JWTClaimsRegistry(now=now, leeway=leeway, **options).validate(answer)
    except ClaimError as error:
        raise TokenError(f"introspection: claim {error.claim!r} is invalid: "
                         f"{error.description}") from None
    except JoseError as error:
        raise TokenError(f"introspection: {error}") from None
    claims = {k: v for k, v in answer.items() if k != "active"}
    if "aud" not in claims:  # accepted without one: it was accepted for this audience
        claims["aud"] = audience
    return claims


class _NoAuth(httpx.Auth):
    """No ``Authorization`` header (the credentials are in the form)."""


async def _post(token: str, config: IntrospectionSettings, client: httpx.AsyncClient,
                timeout: float) -> dict[str, Any]:
    endpoint = config.endpoint
    form = {"token": token, "token_type_hint": "access_token"}
    auth: httpx.Auth = httpx.BasicAuth(config.client_id, config.client_secret)
    if config.client_auth == "client_secret_post":
        form.update(client_id=config.client_id, client_secret=config.client_secret)
        auth = _NoAuth()
    try:
        response = await client.post(endpoint, data=form, auth=auth,
                                     headers={"Accept": "application/json"}, timeout=timeout)
    except httpx.HTTPError as error:
        raise UpstreamError(f"introspection at {endpoint} failed: {error!r}") from None
    if response.status_code != 200:
        raise UpstreamError(f"introspection at {endpoint} answered {response.status_code}")
    if len(response.content) > _MAX_BYTES:
        raise UpstreamError(f"introspection answer from {endpoint} is too large")
    try:
        answer = json.loads(response.content)
    except ValueError:
        raise UpstreamError(f"introspection answer from {endpoint} is not JSON") from None
    if not isinstance(answer, dict):
        raise UpstreamError(f"introspection answer from {endpoint} is not an object")
    return answer
