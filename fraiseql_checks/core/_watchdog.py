"""Time limits of running checks, and a guard against checks that block the loop.

One periodic tick on the loop enforces every running check's deadline (cheaper
than a timer per check: a thousand checks a second cost one callback per tick).
The tick is also the loop's heartbeat. An ``async def`` check that calls
``time.sleep`` (or any blocking call, or CPU work) stops the ticks; a thread
notices and notes which task holds the loop. A hold longer than ``BLOCK_REPORT``
is reported (``on_block``) with that task. Once the blocking check is past its
deadline the thread sends the main thread a signal whose handler raises
``LoopBlocked`` inside the blocking call (PEP 475: a handler that raises ends the
system call). The other checks lost that time through no fault of theirs: the
first tick after a stall pushes their deadlines back by as much, and the stalls
are kept for a while so that ``stopwatch()`` can leave them out of what a check
measures.
"""

from __future__ import annotations

import collections
import contextvars
import signal
import threading
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

_SIGNAL = signal.SIGUSR2
if TYPE_CHECKING:  # asyncio is imported where a loop runs: not by a run that only collects
    import asyncio

    Task = asyncio.Task[Any]


class Timed(Protocol):
    """What has a deadline: a task, or a run without one (``runner.SyncRun``); ``cancel``
    is called when the deadline passes."""

    def cancel(self) -> bool: ...


#: A check that holds the loop longer than this is reported by name as blocking.
BLOCK_REPORT = 0.1
#: Stalls at least this long are remembered for ``stopwatch()``.
_STALL_KEPT = 0.01
#: How many recent stalls are remembered.
_STALLS = 256
_by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Watchdog] = weakref.WeakKeyDictionary()


def watchdog_of(loop: asyncio.AbstractEventLoop) -> Watchdog | None:
    """The watchdog guarding ``loop``, if any."""
    return _by_loop.get(loop)


class LoopBlocked(BaseException):
    """Raised inside a check that held the event loop past its timeout.

    A ``BaseException``, so that ``except Exception`` in the check does not swallow it.
    """


class Watchdog:
    """Deadlines for tasks on one loop, and (on the main thread) the blocked-loop guard."""

    def __init__(self, loop: asyncio.AbstractEventLoop, tick: float = 0.02, stall: float = BLOCK_REPORT) -> None:
        self._loop = loop
        self._tick_every = tick
        self._stall = stall
        self._deadlines: dict[Timed, float] = {}
        #: Tasks (and runs) cancelled for passing their deadline, until ``discard`` is called.
        self.expired: set[Timed] = set()
        self._handle: asyncio.TimerHandle | None = None
        #: The ticks run in the context the watchdog was made in, not in that of the run
        #: that happened to arm them: a run a tick ends (``cancel``) is reported outside
        #: any other check's run.
        self._context = contextvars.copy_context()
        self._last_tick = time.perf_counter()
        #: Called on the loop after a task held it longer than ``stall`` seconds, with what
        #: ``name_of`` said of the task while it held the loop (``None`` if unknown) and the seconds.
        self.on_block: Callable[[str | None, float], None] | None = None
        #: Names the task holding the loop, called from the guard's thread while it holds it.
        self.name_of: Callable[[Task], str | None] = lambda task: None
        #: The holders the guard's thread saw since the last tick: ``(when, task, name)``.
        self._samples: list[tuple[float, Task | None, str | None]] = []
        #: Recent stalls: ``(end, seconds, the holder's name or None)``, ``perf_counter`` time.
        self.stalls: collections.deque[tuple[float, float, str | None]] = collections.deque(maxlen=_STALLS)
        _by_loop[loop] = self
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

    def add(self, task: Timed, seconds: float) -> None:
        self._deadlines[task] = self._loop.time() + seconds
        if self._handle is None:
            self._last_tick = time.perf_counter()
            self._handle = self._loop.call_later(self._tick_every, self._tick, context=self._context)

    def discard(self, task: Timed) -> bool:
        """Forget ``task``'s deadline; ``True`` if it had expired (and the task was cancelled for it)."""
        self._deadlines.pop(task, None)
        if task in self.expired:
            self.expired.discard(task)
            return True
        return False

    def deadline(self, task: Timed) -> float | None:
        return self._deadlines.get(task)

    def _tick(self) -> None:
        self._settle(time.perf_counter())
        self._expire()

    def _settle(self, now: float) -> None:
        """Account for the loop's time since the last tick: a stall is put down to its holders
        (as the guard's thread saw them), the others' deadlines move back by what they lost."""
        held = now - self._last_tick - self._tick_every
        self._last_tick = now
        samples, self._samples = self._samples, []
        self._suspect = None
        if held < _STALL_KEPT:
            return
        # Who held the loop, piece by piece: several tasks may have held it in turn before
        # this tick came round. The guard's thread sampled the holder every few tens of
        # milliseconds; between two samples of different holders the change is put halfway.
        start = now - held
        pieces: list[tuple[float, float, Task | None, str | None]] = []
        for index, (at, task, name) in enumerate(samples):
            begin = start if index == 0 else (samples[index - 1][0] + at) / 2
            end = now if index == len(samples) - 1 else (at + samples[index + 1][0]) / 2
            begin, end = max(min(begin, now), start), max(min(end, now), start)
            if pieces and pieces[-1][2] is task:
                pieces[-1] = (pieces[-1][0], end, task, name)
            else:
                pieces.append((begin, end, task, name))
        if not pieces:
            pieces.append((start, now, None, None))
        own: dict[Timed | None, float] = {}
        by_name: dict[str | None, float] = {}
        for first, last, holder, name in pieces:
            self.stalls.append((last, last - first, name))
            own[holder] = own.get(holder, 0.0) + last - first
            by_name[name] = by_name.get(name, 0.0) + last - first
        if held > self._stall:
            self.longest_block = max(self.longest_block, *by_name.values())
            for timed, when in self._deadlines.items():  # the others get back the time they lost
                self._deadlines[timed] = when + held - own.get(timed, 0.0)
            if self.on_block is not None:
                for name, seconds in by_name.items():
                    if seconds > self._stall:
                        self.on_block(name, seconds)

    def _expire(self) -> None:
        """Cancel what is past its deadline. A run's ``cancel`` may end it at once (its
        result reported, other runs dropped meanwhile): what it does cannot stop the
        others' expiry, nor the next tick."""
        loop_now = self._loop.time()
        overdue = [task for task, when in self._deadlines.items() if when <= loop_now]
        try:
            for task in overdue:
                if self._deadlines.pop(task, None) is None:
                    continue  # discarded by an earlier one's cancel
                self.expired.add(task)
                try:
                    task.cancel()
                except Exception as exc:  # tried again at the next tick
                    self.expired.discard(task)
                    self._deadlines[task] = loop_now
                    self._loop.call_exception_handler(
                        {"message": "cancelling a run past its deadline failed", "exception": exc}
                    )
        finally:
            again = self._deadlines and not self._stop.is_set()
            self._handle = self._loop.call_later(self._tick_every, self._tick, context=self._context) if again else None

    # -- the blocked-loop guard --------------------------------------------------------

    @staticmethod
    def can_guard() -> bool:
        return threading.current_thread() is threading.main_thread() and hasattr(signal, "pthread_kill")

    def start_guard(self) -> None:
        self._previous_handler = signal.signal(_SIGNAL, self._interrupt)
        self._thread = threading.Thread(target=self._watch, name="fraiseql-check-watchdog", daemon=True)
        self._thread.start()

    def held_by_others(self, since: float, until: float, name: str | None) -> float:
        """Seconds within ``[since, until]`` (``perf_counter`` time) during which the loop
        was held by another check than the one ``name`` names (``name_of`` of the
        measuring task): tasks of the same check, and stalls whose holder is unknown,
        count for nothing, so a slow target is never hidden.

        A stall that just ended may not be accounted for yet: a task woken in the same
        turn as the one that held the loop runs before the next tick. Called on the loop,
        the stall is settled here, not left out."""
        import asyncio

        now = time.perf_counter()
        if self._handle is not None and now - self._last_tick - self._tick_every >= _STALL_KEPT:
            try:
                running = asyncio.get_running_loop() is self._loop
            except RuntimeError:
                running = False
            if running:
                self._settle(now)
        total = 0.0
        for end, seconds, holder in reversed(self.stalls):
            if end < since:
                break
            if holder is None or holder == name or (name is not None and f"(set up for {name})" in holder):
                continue
            total += max(min(end, until) - max(end - seconds, since), 0.0)
        return total

    def stop(self) -> None:
        _by_loop.pop(self._loop, None)
        self._stop.set()
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self._thread is not None:
            signal.signal(_SIGNAL, self._previous_handler)
            self._thread = None

    def _watch(self) -> None:
        import asyncio

        main = threading.main_thread().ident
        every = self._tick_every * 2.5
        while not self._stop.wait(every):
            if self._handle is None:
                continue  # nothing with a deadline is running
            now = time.perf_counter()
            if now - self._last_tick < every:
                continue
            task = asyncio.current_task(self._loop)
            if task is None:  # a callback holds the loop (a protocol's, a timer's): no check's
                self._samples.append((now, None, None))
                self._suspect = None
                continue
            name = self.name_of(task) if task is not self._suspect else self._samples[-1][2] if self._samples else None
            self._samples.append((now, task, name))  # who holds the loop now
            self._suspect = task
            deadline = self._deadlines.get(task)
            if deadline is None or self._loop.time() < deadline or self._target is task:
                continue
            self._target = task
            self._blocked_since = self._last_tick
            if main is not None:
                signal.pthread_kill(main, _SIGNAL)

    def _interrupt(self, signum: int, frame: object) -> None:
        import asyncio

        target, self._target = self._target, None
        if target is None or asyncio.current_task(self._loop) is not target:
            return
        self.interrupted += 1
        held = time.perf_counter() - self._blocked_since
        raise LoopBlocked(
            f"blocked the event loop for {held:.1f}s (a blocking call inside an async check) and was interrupted"
        )
