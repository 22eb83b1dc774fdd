"""Waiting in tests: poll a condition until a deadline; never sleep a fixed time and hope.

``wait_until`` (threads, subprocesses) and ``eventually`` (an awaitable condition, inside an
event loop) return the first truthy value of the condition, or fail with ``message`` once
``timeout`` seconds have passed. The polling interval starts small and backs off, so a condition
that is met at once costs nothing, and a slow machine only makes a test slower, not red.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ["TIMEOUT", "eventually", "wait_until"]

T = TypeVar("T")

TIMEOUT = 10.0  # seconds: generous, it only bounds a failing test
_FIRST, _MAX = 0.005, 0.1  # polling interval: first, then doubled up to this


def wait_until(predicate: Callable[[], T], *, timeout: float = TIMEOUT,
               message: str = "the condition") -> T:
    """Call ``predicate`` until it returns something truthy; that value is returned."""
    deadline = time.monotonic() + timeout
    delay = _FIRST
    while True:
        value = predicate()
        if value:
            return value
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"{message}: not met within {timeout} s")
        time.sleep(min(delay, remaining))
        delay = min(delay * 2, _MAX)


async def eventually(predicate: Callable[[], Awaitable[T]], *, timeout: float = TIMEOUT,
                     message: str = "the condition") -> T:
    """Await ``predicate()`` until it gives something truthy, yielding to the loop between."""
    deadline = time.monotonic() + timeout
    delay = _FIRST
    while True:
        value = await predicate()
        if value:
            return value
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"{message}: not met within {timeout} s")
        await asyncio.sleep(min(delay, remaining))
        delay = min(delay * 2, _MAX)
