"""The lowest CPU priority a process can give itself without privileges.

On Linux that is ``SCHED_IDLE``: the process runs only when no ordinary task wants the core,
so a feeder that shares a core with a saturated server yields it entirely and catches up
(from the segment files, which are the durable record) as soon as the core is idle.
Elsewhere, or if the kernel refuses, niceness 19.
"""

from __future__ import annotations

import contextlib
import os

__all__ = ["lowest_priority"]


def lowest_priority() -> str:
    """Lower the calling process to the lowest CPU priority; what it got (``idle``, ``nice``
    or ``unchanged``)."""
    idle = getattr(os, "SCHED_IDLE", None)
    if idle is not None:
        try:
            os.sched_setscheduler(0, idle, os.sched_param(0))
        except OSError:
            pass
        else:
            return "idle"
    with contextlib.suppress(OSError):
        os.nice(19 - os.nice(0))
        return "nice"
    return "unchanged"
