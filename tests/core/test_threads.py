"""The lane of worker threads for sync checks: threads start as calls block, not per job."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable

from fraiseql_checks.core._threads import ThreadLane
from fraiseql_checks.core._watchdog import Watchdog

#: A bound on every wait here: a lane that never grows fails, it does not hang.
WAIT = 60.0


def test_quick_calls_share_one_thread() -> None:
    """A thousand calls that never block run on the thread started for the first (or a
    second): no thread per job to start and to hand the GIL to."""

    async def main() -> set[int]:
        lane = ThreadLane(asyncio.get_running_loop(), max_threads=100)
        try:
            return set(
                await asyncio.wait_for(asyncio.gather(*(lane.run(threading.get_ident) for _ in range(1000))), WAIT)
            )
        finally:
            lane.close()

    assert len(asyncio.run(main())) <= 2  # a second only if the loop looked while the first took the lane's lock


def test_blocking_calls_each_get_a_thread() -> None:
    """Fifty calls that each wait until all fifty are under way finish only if the lane
    gave each its own thread."""
    count = 50
    barrier = threading.Barrier(count, timeout=WAIT)

    async def main() -> set[int]:
        lane = ThreadLane(asyncio.get_running_loop(), max_threads=100)

        def call() -> int:
            barrier.wait()
            return threading.get_ident()

        try:
            return set(await asyncio.wait_for(asyncio.gather(*(lane.run(call) for _ in range(count))), WAIT))
        finally:
            lane.close()

    assert len(asyncio.run(main())) == count


def test_a_blocked_call_does_not_hold_the_quick_ones_and_the_limit_holds() -> None:
    """One call blocked until the end, then quick calls behind it: they run (on a thread
    started for them) while it waits; and no more threads than the limit ever run."""
    release = threading.Event()
    running = 0
    most = 0
    lock = threading.Lock()

    def tracked(block: bool) -> None:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        try:
            if block:
                assert release.wait(WAIT)
        finally:
            with lock:
                running -= 1

    async def main() -> None:
        lane = ThreadLane(asyncio.get_running_loop(), max_threads=3)
        try:
            blocked = asyncio.ensure_future(lane.run(tracked, True))
            await asyncio.wait_for(asyncio.gather(*(lane.run(tracked, False) for _ in range(200))), WAIT)
            assert not blocked.done()
            release.set()
            await asyncio.wait_for(blocked, WAIT)
            more = [lane.run(tracked, True) for _ in range(10)]  # blocking until released: all at once
            release.clear()
            waiting = asyncio.ensure_future(asyncio.gather(*more))

            async def three_running() -> None:
                while most < 3:
                    await asyncio.sleep(0.01)

            await asyncio.wait_for(three_running(), WAIT)
            release.set()
            await asyncio.wait_for(waiting, WAIT)
        finally:
            lane.close()

    asyncio.run(main())
    assert most == 3


def test_submitted_calls_end_in_their_callback_and_an_abandoned_one_is_not_called_back() -> None:
    """``submit``: no future; ``done(value, error)`` on the loop for each call that ended,
    one failing callback does not keep the batch's others from theirs, and a call
    abandoned while it runs is never reported (its thread finishes it unobserved)."""
    release = threading.Event()

    async def main() -> tuple[list[tuple[str, object, str]], list[str]]:
        loop = asyncio.get_running_loop()
        errors: list[str] = []
        loop.set_exception_handler(lambda _loop, context: errors.append(context["message"]))
        lane = ThreadLane(loop, max_threads=10)
        seen: list[tuple[str, object, str]] = []
        all_done = loop.create_future()

        def done(name: str) -> Callable[[object, BaseException | None], None]:
            def callback(value: object, error: BaseException | None) -> None:
                seen.append((name, value, type(error).__name__ if error else ""))
                if len(seen) == 3 and not all_done.done():
                    all_done.set_result(None)
                if name == "fails in its callback":
                    raise RuntimeError("a caller's bug")

            return callback

        hung = lane.submit(release.wait, (WAIT,), contextvars.copy_context(), done("abandoned"))
        lane.submit(lambda: 1, (), contextvars.copy_context(), done("fails in its callback"))
        lane.submit(lambda: 2, (), contextvars.copy_context(), done("returns"))
        lane.submit(lambda: 1 / 0, (), contextvars.copy_context(), done("raises"))
        await asyncio.sleep(0.01)
        lane.abandon(hung)
        try:
            await asyncio.wait_for(all_done, WAIT)
            release.set()
            await asyncio.sleep(0.05)  # the abandoned call returns: nothing more is reported
            return seen, errors
        finally:
            lane.close()

    seen, errors = asyncio.run(main())
    assert sorted(seen, key=str) == sorted(
        [("fails in its callback", 1, ""), ("returns", 2, ""), ("raises", None, "ZeroDivisionError")], key=str
    )
    assert errors == ["a lane job's callback failed"]


def test_the_watchdog_expires_every_overdue_run_though_one_cancel_fails_or_drops_another() -> None:
    """A run without a task ends in its ``cancel``, which may report its result and drop
    other runs meanwhile: one that raises or discards a fellow must not stop the others'
    expiry nor the next tick, and one whose cancel raised is cancelled again."""

    class Run:
        def __init__(self, name: str, action: Callable[[], None] = lambda: None) -> None:
            self.name, self.action, self.cancelled = name, action, 0

        def cancel(self) -> bool:
            self.cancelled += 1
            self.action()
            return True

    async def main() -> tuple[dict[str, int], list[str]]:
        loop = asyncio.get_running_loop()
        errors: list[str] = []
        loop.set_exception_handler(lambda _loop, context: errors.append(context["message"]))
        watchdog = Watchdog(loop, tick=0.01)
        dropped = Run("dropped by the first")
        later = Run("due later")

        def drop() -> None:
            watchdog.discard(dropped)

        failing = Run("fails once")

        def fail() -> None:
            if failing.cancelled == 1:
                raise RuntimeError("a bug in a run's cancel")

        failing.action = fail
        runs = [Run("drops another", drop), dropped, failing, Run("plain")]
        for run in runs:
            watchdog.add(run, 0.0)
        watchdog.add(later, 0.2)
        await asyncio.sleep(0.5)
        watchdog.stop()
        return {run.name: run.cancelled for run in [*runs, later]}, errors

    cancelled, errors = asyncio.run(main())
    # the one whose cancel failed is cancelled again at the next tick
    assert cancelled == {"drops another": 1, "dropped by the first": 0, "fails once": 2, "plain": 1, "due later": 1}
    assert errors == ["cancelling a run past its deadline failed"]
