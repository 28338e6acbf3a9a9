"""How long the watcher's own tasks hold its event loop before they give it a turn.

One event loop serves everything in the watcher: the workers' results, the schedule,
the store's writes, the scrapes. A task with much to do (a worker's results while
hundreds of runs are in flight, thousands of checks due at once) does it a ``Step`` at
a time, about ``STEP`` long, and gives the loop a turn between steps: a scrape then
waits for a few short steps, not behind hundreds of results. With a worker's results
taken all at once, a saturated watcher with 1,000 slots answered ``/metrics`` with a
p99 of 59-63 ms, against 40-43 ms in steps (docs/performance.md).
"""

from __future__ import annotations

import asyncio
import time

__all__ = ["CLOCK_EVERY", "STEP", "Step"]

#: A step's length, in seconds.
STEP = 0.001
#: A task reads the clock after this many pieces of work (messages, runs), not after each.
CLOCK_EVERY = 16


class Step:
    """The step a task is in: ``over()`` once it has taken ``STEP``; ``begin()`` when the
    task is resumed after a turn of the loop (or after waiting for its input)."""

    __slots__ = ("_ends",)

    def __init__(self) -> None:
        self._ends = 0.0
        self.begin()

    def begin(self) -> None:
        self._ends = time.perf_counter() + STEP

    def over(self) -> bool:
        return time.perf_counter() >= self._ends

    async def turn(self) -> None:
        """Give the loop a turn, then begin the next step."""
        await asyncio.sleep(0)
        self.begin()
