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
import contextlib
import time
from collections.abc import AsyncIterator
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


#: ``own_timeout(s)`` ends within this many times ``s`` on the wall clock.
OWN_TIMEOUT_BOUND = 3.0


def own_timeout_backstop(seconds: float) -> float:
    """The limit to give a client library (asyncpg, redis-py) for a wait that
    ``own_timeout(seconds)`` bounds: its own timers have the race ``own_timeout`` avoids,
    so theirs must come due only after ours can have ended."""
    return OWN_TIMEOUT_BOUND * seconds + 1.0


@contextlib.asynccontextmanager
async def own_timeout(seconds: float | None) -> AsyncIterator[None]:
    """``asyncio.timeout(seconds)`` counted in the check's own time: when the time is up,
    what other checks held the event loop meanwhile (as ``stopwatch()`` leaves it out) is
    given back first, so only a wait that is slow by itself times out. What is given back
    is bounded: the wait ends within ``OWN_TIMEOUT_BOUND`` times ``seconds`` on the wall
    clock, however long the neighbours keep holding the loop.

    Without it, a connection made while a neighbour held the loop past the timeout would
    fail: once the loop is free, the timer and the news of the connection are due in the
    same turn, and the timer cancels the wait before it sees the news.
    """
    if seconds is None or seconds <= 0:  # no limit, or none to give back: asyncio's own
        async with asyncio.timeout(seconds):
            yield
        return
    loop = asyncio.get_running_loop()
    took = Stopwatch()
    latest = loop.time() + OWN_TIMEOUT_BOUND * seconds
    handle: asyncio.TimerHandle | None = None
    async with asyncio.timeout(None) as limit:

        def expire() -> None:
            nonlocal handle
            left = min(seconds - took.seconds, latest - loop.time())
            if left > 0.001:
                handle = loop.call_later(left, expire)
            else:
                handle = None
                limit.reschedule(loop.time())  # the wait is cancelled, and raises TimeoutError

        handle = loop.call_later(seconds, expire)
        try:
            yield
        finally:
            if handle is not None:
                handle.cancel()
