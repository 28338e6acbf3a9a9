"""``stopwatch()``: how long something took, without the time other checks held the loop.

Checks share an event loop. When one of them holds it (CPU work or a blocking call
in an ``async def``), every other check's ``await`` resumes late, and a latency
measured with ``time.perf_counter()`` around it grows by the hold: a healthy
target looks slow because a neighbour was busy. ``stopwatch()`` measures the same
interval and leaves out the stalls the runner saw other tasks cause; stalls it
cannot attribute count, so a slow target is never hidden::

    with stopwatch() as took:
        await cache.ping()
    assert took.seconds <= 0.25, f"PING took {took.seconds * 1000:.1f}ms"

Outside an event loop (a synchronous check runs on a thread of its own) it is a
plain ``perf_counter`` interval.
"""

from __future__ import annotations

import asyncio
import time
from types import TracebackType

from fraiseql_checks.core._watchdog import Watchdog, watchdog_of


class Stopwatch:
    """One measured interval; ``seconds`` is final once the ``with`` block ends."""

    __slots__ = ("_end", "_owner", "_start", "_watchdog")

    def __init__(self) -> None:
        self._start = time.perf_counter()
        self._end: float | None = None
        #: The check measuring (how the runner names its tasks): its own stalls count.
        self._owner: str | None = None
        self._watchdog: Watchdog | None = None
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._watchdog = watchdog_of(loop)
        task = asyncio.current_task(loop)
        if self._watchdog is not None and task is not None:
            self._owner = self._watchdog.name_of(task)

    def __enter__(self) -> Stopwatch:
        self._start = time.perf_counter()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._end = time.perf_counter()

    @property
    def wall(self) -> float:
        """The plain elapsed time, stalls included."""
        end = time.perf_counter() if self._end is None else self._end
        return end - self._start

    @property
    def seconds(self) -> float:
        """The elapsed time without the time other tasks held the event loop."""
        end = time.perf_counter() if self._end is None else self._end
        elapsed = end - self._start
        if self._watchdog is None:
            return elapsed
        return max(elapsed - self._watchdog.held_by_others(self._start, end, self._owner), 0.0)


def stopwatch() -> Stopwatch:
    """Measure the ``with`` block's duration, leaving out what other checks made it wait."""
    return Stopwatch()
