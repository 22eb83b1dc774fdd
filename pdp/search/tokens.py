"""Page tokens of the Search API (AuthZEN 1.0 section 8.3, pagination): opaque, tamper-evident
and bound to the request they continue.

A token is ``base64url(payload) "." base64url(tag)`` where the payload holds the format
version, the request fingerprint and the keyset cursor (the last candidate already examined),
and the tag is an HMAC-SHA256 of the payload under the page-token key, truncated to 128 bits.
The key is ``PDP_PAGE_TOKEN_KEY``, shared by every replica behind one load balancer so that
any of them can continue a search another started; when it is unset each process draws a
random key, and tokens are then valid only on the process that issued them.

A token that does not verify, or that belongs to a different request, is a 400
(:class:`~pdp.errors.InvalidPageToken`). Tokens carry no expiry: they hold only a position
in a sorted list, so an old token continues from where it left off over the current data.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os

import orjson

from pdp.errors import InvalidPageToken

__all__ = ["PageTokens"]

_FORMAT = 2  # [format, fingerprint, cursor, page.limit]
_TAG_BYTES = 16


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class PageTokens:
    def __init__(self, key: bytes | None = None) -> None:
        self._key = key if key else os.urandom(32)

    @classmethod
    def from_secret(cls, secret: str | None) -> PageTokens:
        return cls(hashlib.sha256(secret.encode()).digest() if secret else None)

    def issue(self, fingerprint: bytes, cursor: str, limit: int | None = None) -> str:
        """A token for the page after ``cursor``, bound to the request (its fingerprint) and
        to the ``page.limit`` it was sent with (None: none)."""
        payload = orjson.dumps([_FORMAT, _b64(fingerprint), cursor, limit])
        return _b64(payload) + "." + _b64(self._tag(payload))

    def open(self, token: str, fingerprint: bytes, limit: int | None = None) -> str:
        """The cursor inside ``token``, if it is genuine and belongs to this request."""
        return self.open_page(token, fingerprint, limit)[0]

    def open_page(self, token: str, fingerprint: bytes, limit: int | None = None,
                  ) -> tuple[str, int | None]:
        """The cursor inside ``token`` and the ``page.limit`` the pagination was started with,
        if the token is genuine and belongs to this request. ``limit``: the one this request
        states (None: none, which continues with the bound one); another is a 400."""
        head, sep, tag = token.partition(".")
        try:
            payload, given = _unb64(head), _unb64(tag)
        except (binascii.Error, ValueError):
            raise InvalidPageToken("invalid page token", field="page.token") from None
        canonical = _b64(payload) == head and _b64(given) == tag  # no malleable padding bits
        if not sep or not canonical or not hmac.compare_digest(given, self._tag(payload)):
            raise InvalidPageToken("invalid page token", field="page.token")
        try:
            version, bound, cursor, bound_limit = orjson.loads(payload)
        except (ValueError, TypeError):
            raise InvalidPageToken("invalid page token", field="page.token") from None
        if version != _FORMAT or not isinstance(cursor, str):
            raise InvalidPageToken("invalid page token", field="page.token")
        if bound != _b64(fingerprint):
            raise InvalidPageToken(
                "the page token belongs to a different request: a follow-up request must "
                "repeat the first one, changing only page.token", field="page.token")
        if limit is not None and bound_limit != limit:
            raise InvalidPageToken(
                f"page.limit changed in the middle of a pagination (from {bound_limit} to "
                f"{limit}): a follow-up request must repeat the first one, changing only "
                "page.token", field="page.limit")
        return cursor, bound_limit if isinstance(bound_limit, int) else None

    def _tag(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()[:_TAG_BYTES]
