"""RFC 7662 token introspection for opaque access tokens (docs/spec/coaz.md, "Both dialects: the
access token": an opaque token may be resolved through introspection).

The token is POSTed (``token``, ``token_type_hint=access_token``) with HTTP Basic client
authentication. The answer must be a JSON object with ``active: true``; its ``iss`` (if any)
must be an accepted issuer, its ``aud`` must name this server (unless the settings waive an
absent ``aud``), and ``exp``/``nbf``/``iat`` (if any) are checked with the leeway. The answer
without ``active`` becomes the claims. Results are not cached.
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

__all__ = ["introspect"]

_MAX_BYTES = 1_048_576


async def introspect(token: str, settings: TokenSettings, client: httpx.AsyncClient,
                     now: Callable[[], int]) -> dict[str, Any]:
    """The claims of an active token; :class:`TokenError` if it is not active or not for this
    server, :class:`UpstreamError` if the endpoint fails."""
    config = settings.introspection
    assert config is not None
    answer = await _post(token, config, client, settings.http_timeout)
    if answer.get("active") is not True:
        raise TokenError("introspection: the token is not active")
    options: dict[str, ClaimsOption] = {"iss": {"values": list(settings.issuers)}}
    if config.require_audience or "aud" in answer:
        options["aud"] = {"essential": True, "value": settings.audience}
    try:
        JWTClaimsRegistry(now=now, leeway=settings.leeway, **options).validate(answer)
    except ClaimError as error:
        raise TokenError(f"introspection: claim {error.claim!r} is invalid: "
                         f"{error.description}") from None
    except JoseError as error:
        raise TokenError(f"introspection: {error}") from None
    return {k: v for k, v in answer.items() if k != "active"}


async def _post(token: str, config: IntrospectionSettings, client: httpx.AsyncClient,
                timeout: float) -> dict[str, Any]:
    endpoint = config.endpoint
    try:
        response = await client.post(
            endpoint, data={"token": token, "token_type_hint": "access_token"},
            auth=httpx.BasicAuth(config.client_id, config.client_secret),
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
