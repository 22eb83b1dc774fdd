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

__all__ = ["PolicyHolder", "ReloadFailure"]

log = logging.getLogger("pdp.policies")


@dataclass(frozen=True, slots=True)
class ReloadFailure:
    at: datetime
    error: PolicyLoadError


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
