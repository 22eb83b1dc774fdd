"""Lower CPU priorities for the decision log's SQL ingest, given without privileges.

:func:`lowest_priority`, for the feeder process:

On Linux that is ``SCHED_IDLE``: the process runs only when no ordinary task wants the core,
so a feeder that shares a core with a saturated server yields it entirely and catches up
(from the segment files, which are the durable record) as soon as the core is idle.
Elsewhere, or if the kernel refuses, niceness 19. :func:`lower_thread_priority`, for the
ingest thread (``PDP_DECISION_LOG_INGEST=thread``): niceness +10 for that thread alone.
"""

from __future__ import annotations

import contextlib
import os
import threading

__all__ = ["INGEST_NICENESS", "lower_thread_priority", "lowest_priority"]


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


INGEST_NICENESS = 10


def lower_thread_priority() -> None:
    """Lower the calling thread's CPU priority (Linux schedules threads one by one): when the
    SQL work and the serving thread share a core, decisions go first and the log catches up
    from its segments when the core has time. Elsewhere, nothing changes."""
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid)
                       + INGEST_NICENESS)
    except (AttributeError, OSError):
        pass
