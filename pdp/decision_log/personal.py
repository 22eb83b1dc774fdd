"""Personal data in the decision log: keyed digests and redacted error messages.

``hashed`` stores ``hmac-sha256:KEYID:HEX``, the HMAC-SHA256 of a value's canonical JSON
under a secret key: equal values stay recognisable (within one key), and without the key a
value cannot be recovered by trying candidates (a date of birth, an SSN). ``KEYID`` names the
key (the first 8 hex digits of the HMAC of a fixed label) so that records written before a
rotation are told apart. The key is ``PDP_DECISION_LOG_HASH_KEY`` (hex) or, unset, the file
``decision-log.key`` in the data directory, generated on first use with mode 0600.

``omitted`` stores no value; error messages keep the field they name and lose every value of
the request they quote (Cedar and the request translator echo offending values).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pdp.errors import ConfigurationError

__all__ = ["KEY_FILE", "HashKeyError", "Hasher", "load_key", "redact"]

log = logging.getLogger("pdp.decision_log")

KEY_FILE = "decision-log.key"
REDACTED = "<redacted>"
_MAX_VALUES = 2000  # beyond this many request values, an error message is withheld whole


class HashKeyError(ConfigurationError):
    """The decision log's hash key is unusable (refused at start: never a weaker digest)."""


class Hasher:
    """HMAC-SHA256 of captured values under one key."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise HashKeyError("the decision log hash key must be at least 16 bytes")
        self._base = hmac.new(key, digestmod=hashlib.sha256)
        self.key_id = hmac.new(key, b"pdp decision log key id", hashlib.sha256).hexdigest()[:8]
        self._prefix = f"hmac-sha256:{self.key_id}:"

    def digest(self, data: bytes) -> str:
        mac = self._base.copy()
        mac.update(data)
        return self._prefix + mac.hexdigest()


def load_key(configured: str | None, data_dir: Path) -> bytes:
    """The configured key (hex), else the data directory's key file, created if absent
    (atomically: concurrent workers end up with the same key)."""
    if configured:
        return _parse(configured.strip(), "PDP_DECISION_LOG_HASH_KEY")
    path = data_dir / KEY_FILE
    if not path.exists():
        _create(path)
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        log.warning("decision log: %s is readable by others (mode %o); chmod 600 it", path, mode)
    return _parse(path.read_text().strip(), str(path))


def _parse(text: str, where: str) -> bytes:
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise HashKeyError(f"{where} must hold a key in hex (e.g. `openssl rand -hex 32`)",
                           ) from None
    if len(key) < 16:
        raise HashKeyError(f"{where} must hold at least 16 bytes (32 hex digits)")
    return key


def _create(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, (secrets.token_hex(32) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # fails if another worker created it first: theirs is used
        log.info("decision log: generated the hash key %s", path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()


def _values(value: Any, out: set[str]) -> None:
    if isinstance(value, Mapping):
        for item in value.values():
            _values(item, out)
    elif isinstance(value, list | tuple):
        for item in value:
            _values(item, out)
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, str):
        if value:
            out.add(value)
            out.add(repr(value)[1:-1])
    else:
        out.add(str(value))


def redact(errors: tuple[str, ...], sources: Iterable[Any]) -> tuple[str, ...]:
    """``errors`` with every value found in ``sources`` (the request's context and
    properties) replaced by ``<redacted>`` wherever it stands as a whole token."""
    values: set[str] = set()
    for source in sources:
        _values(source, values)
    if not values:
        return errors
    if len(values) > _MAX_VALUES:
        return tuple(_field(e) + REDACTED for e in errors)
    pattern = re.compile(r"(?<![\w.\-])(?:" + "|".join(
        re.escape(v) for v in sorted(values, key=len, reverse=True)) + r")(?![\w\-])")
    return tuple(pattern.sub(REDACTED, e) for e in errors)


def _field(error: str) -> str:
    head, sep, _ = error.partition(": ")
    return head + sep if sep and " " not in head else ""
