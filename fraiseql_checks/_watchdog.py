"""Time limits of running checks, and a guard against checks that block the loop.

One periodic tick on the loop enforces every running check's deadline (cheaper
than a timer per check: a thousand checks a second cost one callback per tick).
The tick is also the loop's heartbeat. An ``async def`` check that calls
``time.sleep`` (or any blocking call) stops the ticks; a thread notices, and once
the blocking check is past its deadline it sends the main thread a signal whose
handler raises ``LoopBlocked`` inside the blocking call (PEP 475: a handler that
raises ends the system call). The other checks lost that time through no fault
of theirs: the first tick after a stall pushes their deadlines back by as much.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from typing import Any

_SIGNAL = signal.SIGUSR2
Task = asyncio.Task[Any]


class LoopBlocked(BaseException):
    """Raised inside a check that held the event loop past its timeout.

    A ``BaseException``, so that ``except Exception`` in the check does not swallow it.
    """


class Watchdog:
    """Deadlines for tasks on one loop, and (on the main thread) the blocked-loop guard."""

    def __init__(self, loop: asyncio.AbstractEventLoop, tick: float = 0.02, stall: float = 0.25) -> None:
        self._loop = loop
        self._tick_every = tick
        self._stall = stall
        self._deadlines: dict[Task, float] = {}
        #: Tasks cancelled for passing their deadline, until ``discard`` is called.
        self.expired: set[Task] = set()
        self._handle: asyncio.TimerHandle | None = None
        self._last_tick = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._previous_handler: Any = None
        self._target: Task | None = None
        self._suspect: Task | None = None
        self._blocked_since = 0.0
        #: Longest time the loop was held by one callback, in seconds.
        self.longest_block = 0.0
        #: How many checks were interrupted for blocking the loop.
        self.interrupted = 0

    # -- deadlines ---------------------------------------------------------------------

    def add(self, task: Task, seconds: float) -> None:
        self._deadlines[task] = self._loop.time() + seconds
        if self._handle is None:
            self._last_tick = time.monotonic()
            self._handle = self._loop.call_later(self._tick_every, self._tick)

    def discard(self, task: Task) -> bool:
        """Forget ``task``'s deadline; ``True`` if it had expired (and the task was cancelled for it)."""
        self._deadlines.pop(task, None)
        if task in self.expired:
            self.expired.discard(task)
            return True
        return False

    def deadline(self, task: Task) -> float | None:
        return self._deadlines.get(task)

    def _tick(self) -> None:
        now = time.monotonic()
        held = now - self._last_tick - self._tick_every
        self._last_tick = now
        if held > self._stall:
            suspect, self._suspect = self._suspect, None
            self.longest_block = max(self.longest_block, held)
            for task, when in self._deadlines.items():
                if task is not suspect:
                    self._deadlines[task] = when + held
        loop_now = self._loop.time()
        overdue = [task for task, when in self._deadlines.items() if when <= loop_now]
        for task in overdue:
            del self._deadlines[task]
            self.expired.add(task)
            task.cancel()
        self._handle = self._loop.call_later(self._tick_every, self._tick) if self._deadlines else None

    # -- the blocked-loop guard --------------------------------------------------------

    @staticmethod
    def can_guard() -> bool:
        return threading.current_thread() is threading.main_thread() and hasattr(signal, "pthread_kill")

    def start_guard(self) -> None:
        self._previous_handler = signal.signal(_SIGNAL, self._interrupt)
        self._thread = threading.Thread(target=self._watch, name="fraiseql-check-watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self._thread is not None:
            signal.signal(_SIGNAL, self._previous_handler)
            self._thread = None

    def _watch(self) -> None:
        main = threading.main_thread().ident
        every = self._tick_every * 2.5
        while not self._stop.wait(every):
            if self._handle is None:
                continue  # nothing with a deadline is running
            now = time.monotonic()
            if now - self._last_tick < every:
                continue
            task = asyncio.current_task(self._loop)
            if task is None:
                continue
            self._suspect = task
            deadline = self._deadlines.get(task)
            if deadline is None or self._loop.time() < deadline or self._target is task:
                continue
            self._target = task
            self._blocked_since = self._last_tick
            if main is not None:
                signal.pthread_kill(main, _SIGNAL)

    def _interrupt(self, signum: int, frame: object) -> None:
        target, self._target = self._target, None
        if target is None or asyncio.current_task(self._loop) is not target:
            return
        self.interrupted += 1
        held = time.monotonic() - self._blocked_since
        raise LoopBlocked(
            f"blocked the event loop for {held:.1f}s (a blocking call inside an async check) and was interrupted"
        )
