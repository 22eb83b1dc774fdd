"""The issuers' signing keys (docs/spec/coaz.md, "Both dialects: the access token": signature
against the issuer's JWKS).

Keys come from a JWKS URL (fetched with httpx) or a JWKS file, are imported by joserfc, and are
held in an immutable snapshot that a refresh replaces as a whole. A refresh happens when the
snapshot is older than the cache TTL and when a token names a ``kid`` the snapshot lacks; two
fetches are never closer than the configured minimum interval, whatever triggers them, and
concurrent refreshes share one fetch. When a fetch fails, the keys already held stay in use
(logged); with no keys at all it is an :class:`pdp.errors.UpstreamError`.

Keys that cannot sign (``use`` other than ``sig``, ``key_ops`` without ``verify``) are skipped.
A JWKS fetched from a URL never contributes symmetric (``oct``) or private keys: such entries
are skipped with a warning.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import httpx
from joserfc.errors import JoseError
from joserfc.jwk import JWKRegistry, Key

from pdp.errors import UpstreamError
from pdp.tokens.settings import TokenSettings

__all__ = ["ALGORITHM_KEY_TYPES", "KeySnapshot", "JWKSCache", "parse_jwks"]

log = logging.getLogger(__name__)

#: The JWK ``kty`` each JWS algorithm verifies with.
ALGORITHM_KEY_TYPES: Mapping[str, str] = MappingProxyType({
    "RS256": "RSA", "RS384": "RSA", "RS512": "RSA", "PS256": "RSA", "PS384": "RSA",
    "PS512": "RSA", "ES256": "EC", "ES384": "EC", "ES512": "EC", "EdDSA": "OKP",
    "Ed25519": "OKP", "Ed448": "OKP", "HS256": "oct", "HS384": "oct", "HS512": "oct",
})

_PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth")


@dataclass(frozen=True, slots=True)
class KeySnapshot:
    """The keys held at one time. ``loaded_at`` is on the cache's monotonic clock."""

    keys: tuple[Key, ...] = ()
    loaded_at: float | None = None
    by_kid: Mapping[str, tuple[Key, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index: dict[str, list[Key]] = {}
        for key in self.keys:
            if key.kid is not None:
                index.setdefault(key.kid, []).append(key)
        object.__setattr__(self, "by_kid",
                           MappingProxyType({k: tuple(v) for k, v in index.items()}))

    def find(self, kid: str | None, alg: str) -> Key | None:
        """The key for a token with header ``kid`` and ``alg``. Without a ``kid`` only an
        unambiguous key is returned."""
        key_type = ALGORITHM_KEY_TYPES.get(alg)
        candidates = self.by_kid.get(kid, ()) if kid is not None else self.keys
        matching = [k for k in candidates
                    if k.key_type == key_type and (k.alg is None or k.alg == alg)]
        if kid is None and len(matching) != 1:
            return None
        return matching[0] if matching else None


def parse_jwks(document: Any, *, source: str, remote: bool) -> tuple[Key, ...]:
    """The usable verification keys of a JWKS document (see the module docstring)."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError(f"{source}: not a JWKS document (an object with a 'keys' array)")
    keys: list[Key] = []
    for i, entry in enumerate(document["keys"]):
        if not isinstance(entry, dict):
            log.warning("%s: keys[%d] is not an object; skipped", source, i)
            continue
        use, ops = entry.get("use"), entry.get("key_ops")
        if (use is not None and use != "sig") or (ops is not None and (
                not isinstance(ops, list) or "verify" not in ops)):
            continue
        if remote and (entry.get("kty") == "oct" or any(m in entry for m in _PRIVATE_MEMBERS)):
            log.warning("%s: keys[%d] is a symmetric or private key; skipped", source, i)
            continue
        try:
            keys.append(JWKRegistry.import_key(entry))
        except (JoseError, ValueError, TypeError, KeyError) as error:
            log.warning("%s: keys[%d] cannot be imported (%s); skipped", source, i, error)
    return tuple(keys)


class JWKSCache:
    """The key snapshot and its refreshes. ``client`` returns the HTTP client to fetch with;
    ``clock`` is monotonic seconds."""

    def __init__(self, settings: TokenSettings, *, client: Callable[[], httpx.AsyncClient],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._url = settings.jwks_url
        self._file: Path | None = settings.jwks_file
        self._ttl = settings.jwks_cache_ttl
        self._min_interval = settings.jwks_min_refresh_interval
        self._timeout = settings.http_timeout
        self._max_bytes = settings.max_jwks_bytes
        self._client = client
        self._clock = clock
        self._snapshot = KeySnapshot()
        self._last_attempt: float | None = None
        self._lock: asyncio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None
        if self._file is not None:
            self._last_attempt = clock()
            self._snapshot = KeySnapshot(self._read_file(), clock())

    @property
    def configured(self) -> bool:
        return self._url is not None or self._file is not None

    @property
    def snapshot(self) -> KeySnapshot:
        return self._snapshot

    def is_fresh(self) -> bool:
        loaded = self._snapshot.loaded_at
        return loaded is not None and self._clock() - loaded < self._ttl

    def _read_file(self) -> tuple[Key, ...]:
        assert self._file is not None
        try:
            document = json.loads(self._file.read_text(encoding="utf-8"))
            return parse_jwks(document, source=str(self._file), remote=False)
        except (OSError, ValueError) as error:
            raise UpstreamError(f"JWKS file {self._file} cannot be read: {error}") from None

    async def _fetch(self) -> tuple[Key, ...]:
        if self._file is not None:
            return self._read_file()
        assert self._url is not None
        url = self._url
        try:
            async with self._client().stream("GET", url, headers={"Accept": "application/json"},
                                              timeout=self._timeout) as response:
                if response.status_code != 200:
                    raise UpstreamError(f"JWKS fetch from {url} answered {response.status_code}")
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > self._max_bytes:
                        raise UpstreamError(f"JWKS from {url} exceeds {self._max_bytes} bytes")
        except httpx.HTTPError as error:
            raise UpstreamError(f"JWKS fetch from {url} failed: {error!r}") from None
        try:
            return parse_jwks(json.loads(body), source=url, remote=True)
        except ValueError as error:
            raise UpstreamError(f"JWKS from {url} is invalid: {error}") from None

    def _get_lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock_loop is not loop:
            self._lock, self._lock_loop = asyncio.Lock(), loop
        return self._lock

    async def refresh(self) -> bool:
        """Fetch the keys again unless the last fetch was too recent. True if new keys were
        loaded. Raises :class:`UpstreamError` only when no keys are held at all."""
        if not self.configured:
            return False
        async with self._get_lock():
            now = self._clock()
            if self._last_attempt is not None and now - self._last_attempt < self._min_interval:
                return False
            self._last_attempt = now
            try:
                keys = await self._fetch()
            except UpstreamError as error:
                if not self._snapshot.keys:
                    raise
                log.warning("keeping the keys already held: %s", error.message)
                return False
            self._snapshot = KeySnapshot(keys, self._clock())
            log.info("loaded %d signing keys from %s", len(keys), self._url or self._file)
            return True
