"""``timing.own_timeout``: a time limit counted in the check's own time, bounded on the wall clock."""

from __future__ import annotations

import asyncio
import time

import pytest

from fraiseql_checks.core._watchdog import Watchdog
from fraiseql_checks.timing import own_timeout


async def _with_a_neighbour(wait: float, limit: float, hold: float | None) -> str:
    """Wait ``wait`` seconds under ``own_timeout(limit)`` while, if ``hold``, a neighbour
    check holds the loop ``hold`` seconds at a time, again and again; what came of it."""
    loop = asyncio.get_running_loop()
    watchdog = Watchdog(loop)
    watchdog.name_of = lambda task: task.get_name()
    watchdog.start_guard()
    stop = asyncio.Event()

    async def neighbour() -> None:
        while not stop.is_set():
            time.sleep(hold or 0)  # a blocking call in an async check
            await asyncio.sleep(0.005)

    async def waiter() -> str:
        try:
            async with own_timeout(limit):
                await asyncio.sleep(wait)
        except TimeoutError:
            return "timed out"
        return "completed"

    me = asyncio.create_task(waiter(), name="check_waits")
    watchdog.add(me, 1000)
    others = []
    if hold is not None:
        others.append(asyncio.create_task(neighbour(), name="check_holds"))
        watchdog.add(others[0], 1000)
    try:
        return await me
    finally:
        stop.set()
        await asyncio.gather(*others)
        watchdog.stop()


@pytest.mark.parametrize("hold", [None, 1.0])
def test_a_wait_slow_by_itself_times_out_with_or_without_a_neighbour_holding_the_loop(hold: float | None) -> None:
    # the neighbour holds the loop for a second at a time, again and again: what it holds is
    # given back, but only up to OWN_TIMEOUT_BOUND times the limit, so the 20 s wait still
    # times out (without the bound it would complete: its own time grows ~25 ms a second)
    assert asyncio.run(_with_a_neighbour(wait=20.0, limit=1.0, hold=hold)) == "timed out"


def test_a_wait_within_its_limit_completes() -> None:
    assert asyncio.run(_with_a_neighbour(wait=0.05, limit=1.0, hold=None)) == "completed"


def test_no_limit_or_none_left() -> None:
    async def main(limit: float | None) -> str:
        try:
            async with own_timeout(limit):
                await asyncio.sleep(0)
                await asyncio.sleep(0)
        except TimeoutError:
            return "timed out"
        return "completed"

    assert asyncio.run(main(None)) == "completed"
    assert asyncio.run(main(0)) == "timed out"  # as asyncio.timeout(0)
    assert asyncio.run(main(-1)) == "timed out"
