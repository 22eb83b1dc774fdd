"""Static API keys for PEPs and administrators, stored hashed (AuthZEN 1.0 section 10: the PDP
SHOULD authenticate the PEP; an API key is one of the means it names).

Settings hold only ``NAME=sha256:HEX`` entries: ``NAME`` identifies the caller in logs, metrics
and rate limiting, ``HEX`` is the SHA-256 of the key. Several entries may be configured at
once (also under one name), which is how a key is rotated: add the new entry, move the PEP to
the new key, remove the old entry.

A key is a random 32-byte token (:func:`new_key`, ``secrets.token_urlsafe(32)``): with 256 bits
of entropy no dictionary or brute-force attack on the hash is possible, so one fast SHA-256 is
the right hash (a password hash such as scrypt or argon2 would cost milliseconds on every
request for no gain). A presented key is hashed once and compared with
:func:`hmac.compare_digest` against *every* configured hash, without an early exit, so the time
taken says nothing about which entry (if any) matched.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ApiKey", "ApiKeySet", "KeysFile", "combine", "digest_of", "entry_for", "hash_key",
           "new_key", "parse_entries", "read_entries_file"]

log = logging.getLogger("pdp.auth")

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,63}")
_HASH = re.compile(r"sha256:([0-9a-fA-F]{64})")


def new_key() -> str:
    """A new random API key (32 bytes, URL-safe base64: 43 characters)."""
    return secrets.token_urlsafe(32)


def digest_of(key: str) -> bytes:
    """The SHA-256 of a presented key (UTF-8)."""
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).digest()


def hash_key(key: str) -> str:
    """The stored form of ``key``: ``sha256:<64 hex>``."""
    return "sha256:" + digest_of(key).hex()


def entry_for(name: str, key: str) -> str:
    """The configuration entry ``NAME=sha256:HEX`` of ``key``."""
    _check_name(name)
    return f"{name}={hash_key(key)}"


def _check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ValueError(f"invalid key name {name!r}: 1-64 letters, digits and . _ : @ -, "
                         "starting with a letter or digit")
    return name


@dataclass(frozen=True, slots=True)
class ApiKey:
    """One configured key: who it is and the SHA-256 of the key."""

    name: str
    digest: bytes

    @classmethod
    def parse(cls, entry: str, *, source: str = "API key entry") -> ApiKey:
        name, sep, stored = entry.strip().partition("=")
        if not sep:
            raise ValueError(f"{source}: expected NAME=sha256:HEX, got {_redacted(entry)!r}")
        match = _HASH.fullmatch(stored.strip())
        if match is None:
            raise ValueError(f"{source}: the key of {name.strip()!r} must be stored as "
                             "sha256:<64 hex digits> (`pdp keys hash` makes one)")
        try:
            return cls(_check_name(name.strip()), bytes.fromhex(match.group(1)))
        except ValueError as exc:
            raise ValueError(f"{source}: {exc}") from None


def _redacted(entry: str) -> str:
    """An entry for an error message: never a whole value that might be a plain key."""
    return entry if len(entry) <= 8 else entry[:4] + "…"


def parse_entries(entries: Iterable[str], *, source: str = "API keys") -> tuple[ApiKey, ...]:
    """The keys of ``NAME=sha256:HEX`` entries (blank entries skipped); ValueError names the
    first bad one. One hash under two names is refused (which name would it be?)."""
    return combine((ApiKey.parse(entry, source=f"{source}, entry {i}")
                    for i, entry in enumerate(entries, 1) if entry.strip()), source=source)


def combine(keys: Iterable[ApiKey], *, source: str) -> tuple[ApiKey, ...]:
    """``keys`` without repeats; ValueError if one hash comes under two names."""
    out: list[ApiKey] = []
    seen: dict[bytes, str] = {}
    for key in keys:
        other = seen.setdefault(key.digest, key.name)
        if other != key.name:
            raise ValueError(f"{source}: one key is configured as both {other!r} and "
                             f"{key.name!r}")
        if key not in out:
            out.append(key)
    return tuple(out)


def read_entries_file(path: Path) -> list[str]:
    """The entries of a keys file: one per line; blank lines and ``#`` comments skipped."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"the API keys file {path} cannot be read: {exc.strerror}") from None
    return [line.split("#", 1)[0].strip() for line in text.splitlines()
            if line.split("#", 1)[0].strip()]


class ApiKeySet:
    """Configured keys, matched in constant time with respect to which one matches."""

    __slots__ = ("keys", "_digests", "_names")

    def __init__(self, keys: Iterable[ApiKey]) -> None:
        self.keys = tuple(keys)
        self._digests = tuple(k.digest for k in self.keys)
        self._names = tuple(k.name for k in self.keys)

    def __bool__(self) -> bool:
        return bool(self.keys)

    def __len__(self) -> int:
        return len(self.keys)

    def match_digest(self, digest: bytes) -> str | None:
        """The name of the key whose SHA-256 is ``digest``, else None. Every configured hash is
        compared, whatever matched first."""
        found: str | None = None
        for configured, name in zip(self._digests, self._names, strict=True):
            if hmac.compare_digest(configured, digest):
                found = name
        return found

    def match(self, key: str) -> str | None:
        """The name of ``key``, else None."""
        return self.match_digest(digest_of(key))

    def overlaps(self, other: ApiKeySet) -> bool:
        """Whether one key is in both sets."""
        return bool(set(self._digests) & set(other._digests))


class KeysFile:
    """Fixed keys plus the entries of a keys file, re-read when the file changes, so a key is
    added or revoked without a restart (every worker follows within ``interval`` seconds).

    The check runs on the request path, at most once per ``interval``: a clock read per
    request, one read of the (small) file per interval, a parse only when its bytes changed
    (whatever the editor did: in place, or a rename into place). A file that cannot be read or
    parsed, or that would make a key both a PEP and an admin key (``conflicts``), is refused
    with an error in the log and the keys in force stay: a half-written file must not lock
    every PEP out, and removing an entry is how a key is revoked.
    """

    def __init__(self, fixed: Iterable[ApiKey], path: Path, *, interval: float,
                 conflicts: ApiKeySet | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        self._fixed = tuple(fixed)
        self._interval = interval
        self._conflicts = conflicts
        self._clock = clock
        self._stamp = self._read()
        # at start a bad file is a configuration error (ValueError), not a log line
        self._keys = self._load()
        self._next = clock() + interval

    def _read(self) -> bytes | None:
        try:
            return self.path.read_bytes()
        except OSError:
            return None

    def _load(self) -> ApiKeySet:
        from_file = parse_entries(read_entries_file(self.path), source=str(self.path))
        keys = ApiKeySet(combine((*self._fixed, *from_file),
                                 source=f"PDP_API_KEYS and {self.path}"))
        if self._conflicts is not None and keys.overlaps(self._conflicts):
            raise ValueError(f"{self.path}: a key is both a PEP key and an admin key")
        return keys

    def current(self) -> ApiKeySet:
        """The keys in force (re-reading the file first if it is time and it changed)."""
        now = self._clock()
        if now >= self._next:
            self._next = now + self._interval
            stamp = self._read()
            if stamp != self._stamp:
                self._stamp = stamp
                try:
                    keys = self._load()
                except ValueError as exc:
                    log.error("API keys file not reloaded, the %d keys in force stay: %s",
                              len(self._keys), exc)
                else:
                    log.info("API keys file %s reloaded: %d keys", self.path, len(keys))
                    self._keys = keys
        return self._keys
