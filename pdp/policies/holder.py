"""The active policy set: one immutable value, swapped as a whole.

Readers take ``holder.current`` once per batch; a reload (:mod:`pdp.service.reload`, the one
path every trigger takes) builds a complete new :class:`CompiledPolicySet` off the request
path and replaces the reference in one assignment, so no request ever sees a half-loaded set.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pdp.errors import PolicyLoadError
from pdp.policies.compiled import CompiledPolicySet, compile_directory

__all__ = ["PolicyHolder", "ReloadFailure", "ReloadStats"]



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
    generation: int = 0  # states installed since start: a new set, or the same with new links


class PolicyHolder:
    def __init__(self, initial: CompiledPolicySet) -> None:
        self.current = initial
        self.last_failure: ReloadFailure | None = None

    @classmethod
    def load(cls, directory: Path) -> PolicyHolder:
        return cls(compile_directory(directory))

    def __call__(self) -> CompiledPolicySet:
        return self.current

    def swap(self, new: CompiledPolicySet) -> None:
        self.current = new
