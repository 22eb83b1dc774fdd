"""The active policy set: one immutable value, swapped as a whole.

Readers take ``holder.current`` once per batch; a reload builds a complete new
:class:`CompiledPolicySet` off the request path and replaces the reference in one assignment,
so no request ever sees a half-loaded set.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pdp.errors import PolicyLoadError
from pdp.policies.compiled import CompiledPolicySet, compile_directory

__all__ = ["PolicyHolder", "ReloadFailure", "ReloadStats"]

log = logging.getLogger("pdp.policies")


@dataclass(frozen=True, slots=True)
class ReloadFailure:
    at: datetime
    error: PolicyLoadError


@dataclass(frozen=True, slots=True)
class ReloadStats:
    """The reloader's counters (read by ``GET /status`` and ``/metrics``)."""

    reloads: int  # successful reloads that installed a new version
    failures: int
    unchanged: int  # reloads that found the version already active
    last_reload_at: datetime | None
    last_trigger: str | None
    snapshots: int = 0  # reads of the whole directory (two or more per reload)
    unsettled: int = 0  # times the directory changed between two reads (the reload waited)


class PolicyHolder:
    def __init__(self, initial: CompiledPolicySet) -> None:
        self.current = initial
        self.last_failure: ReloadFailure | None = None
        self._reload_lock = threading.Lock()

    @classmethod
    def load(cls, directory: Path) -> PolicyHolder:
        return cls(compile_directory(directory))

    def __call__(self) -> CompiledPolicySet:
        return self.current

    def swap(self, new: CompiledPolicySet) -> None:
        self.current = new

    def reload(self) -> CompiledPolicySet | None:
        """Compile the directory again; keep serving the last good set if it is invalid."""
        with self._reload_lock:
            directory = self.current.directory
            try:
                new = compile_directory(directory)
            except PolicyLoadError as exc:
                self.last_failure = ReloadFailure(datetime.now(UTC), exc)
                log.error("policy reload rejected, still serving %s:\n%s",
                          self.current.version, exc.message)
                return None
            self.last_failure = None
            if new.version != self.current.version:
                log.info("policy set %s loaded from %s (%d policies)", new.version, directory,
                         len(new.policies))
            self.swap(new)
            return new
