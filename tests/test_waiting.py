"""The tests' waiting helpers: the first truthy value, or a named failure at the deadline."""

from __future__ import annotations

import asyncio
import threading

import pytest

from tests.waiting import eventually, wait_until


def test_wait_until_returns_the_first_truthy_value_once_another_thread_makes_it_so() -> None:
    box: list[str] = []
    threading.Timer(0.05, box.append, ["done"]).start()
    assert wait_until(lambda: list(box), message="the timer") == ["done"]


def test_wait_until_fails_with_the_message_when_the_deadline_passes() -> None:
    with pytest.raises(AssertionError, match="never true: not met within 0.05 s"):
        wait_until(lambda: False, timeout=0.05, message="never true")


@pytest.mark.asyncio
async def test_eventually_awaits_the_condition_and_lets_the_loop_run_meanwhile() -> None:
    flag = asyncio.Event()
    asyncio.get_running_loop().call_soon(flag.set)

    async def is_set() -> bool:
        return flag.is_set()

    assert await eventually(is_set) is True
    with pytest.raises(AssertionError, match="not met"):
        await eventually(lambda: asyncio.sleep(0, result=0), timeout=0.02)
