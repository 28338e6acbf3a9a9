"""The lane of worker threads for sync checks: threads start as calls block, not per job."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable

import pytest

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


def test_jobs_enqueued_while_the_lane_is_held_start_at_release_and_an_abandoned_one_never() -> None:
    """``hold``: what is enqueued waits until ``release`` queues it all at once (a worker
    holds the lane while it starts a frame's runs); a job abandoned meanwhile never runs;
    holds nest, and only the outermost one's release lets the jobs go."""

    async def main() -> tuple[list[str], list[str], bool]:
        loop = asyncio.get_running_loop()
        lane = ThreadLane(loop, max_threads=10)
        ran: list[str] = []
        ended: list[str] = []
        all_ended = loop.create_future()

        def done(name: str) -> Callable[[object, BaseException | None], None]:
            def callback(value: object, error: BaseException | None) -> None:
                ended.append(name)
                if len(ended) == 2:
                    all_ended.set_result(None)

            return callback

        try:
            assert lane.hold()
            second_hold = lane.hold()
            jobs = {
                name: lane.submit(ran.append, (name,), contextvars.copy_context(), done(name))
                for name in ("first", "abandoned", "last")
            }
            lane.abandon(jobs["abandoned"])
            lane.release()  # the inner hold's: the outer one still holds them
            await asyncio.sleep(0.05)  # time enough for a queued job to run: none may have
            held_ran = list(ran)
            lane.release()
            await asyncio.wait_for(all_ended, WAIT)
            await asyncio.sleep(0.01)
            return held_ran, sorted(ran), second_hold
        finally:
            lane.close()

    held_ran, ran, second_hold = asyncio.run(main())
    assert held_ran == []
    assert ran == ["first", "last"]
    assert second_hold is False


def test_a_release_without_a_hold_is_refused_and_the_lane_still_runs_jobs() -> None:
    """A stray ``release`` would make the depth negative, and every job enqueued after it
    would be held for good, silently: it is refused, and the lane goes on."""

    async def main() -> str:
        loop = asyncio.get_running_loop()
        lane = ThreadLane(loop, max_threads=2)
        try:
            with pytest.raises(RuntimeError, match="without a hold"):
                lane.release()
            return await asyncio.wait_for(lane.run(str.upper, "ran"), WAIT)
        finally:
            lane.close()

    assert asyncio.run(main()) == "RAN"


def test_what_the_ends_of_a_batch_start_is_queued_when_the_batch_ends_and_batch_ended_follows() -> None:
    """Jobs enqueued from the callbacks of a batch of ends (the next checks a run starts)
    reach the threads when the batch has been delivered, and ``batch_ended`` is called
    after each batch: a failing one is said and does not stop the lane."""
    import time

    async def main() -> tuple[list[str], list[str]]:
        loop = asyncio.get_running_loop()
        errors: list[str] = []
        loop.set_exception_handler(lambda _loop, context: errors.append(context["message"]))
        lane = ThreadLane(loop, max_threads=10)
        events: list[str] = []
        finished = loop.create_future()

        def batch_ended() -> None:
            events.append("batch ended")
            if events.count("batch ended") == 1:
                raise RuntimeError("a bug in batch_ended")

        lane.batch_ended = batch_ended

        def second_done(value: object, error: BaseException | None) -> None:
            events.append("second ended")
            finished.set_result(None)

        def first_done(value: object, error: BaseException | None) -> None:
            events.append("first ended")
            lane.submit(events.append, ("second called",), contextvars.copy_context(), second_done)
            time.sleep(0.05)  # the GIL let go: a job queued now would be called meanwhile

        try:
            lane.submit(lambda: None, (), contextvars.copy_context(), first_done)
            await asyncio.wait_for(finished, WAIT)
            await asyncio.sleep(0.01)  # the second batch's batch_ended follows its end
            return events, errors
        finally:
            lane.close()

    events, errors = asyncio.run(main())
    assert events == ["first ended", "batch ended", "second called", "second ended", "batch ended"]
    assert errors == ["a lane's batch_ended failed"]


def test_a_batch_of_quick_calls_leaves_no_look_for_blocked_calls_behind() -> None:
    """Quick calls queued faster than one thread takes them arm the look for blocked
    calls (``GROW_AFTER``); once their ends are delivered and nothing waits, it is
    dropped: it would wake the loop a millisecond after every batch for nothing."""
    batches = 40

    class CountingLane(ThreadLane):
        looks = 0

        def _grow(self) -> None:
            CountingLane.looks += 1
            super()._grow()

    async def main() -> None:
        lane = CountingLane(asyncio.get_running_loop(), max_threads=100)
        try:
            for _ in range(batches):
                calls = [lane.run(int) for _ in range(20)]
                await asyncio.wait_for(asyncio.gather(*calls), WAIT)
                await asyncio.sleep(0.003)  # past GROW_AFTER: a look left armed runs now
        finally:
            lane.close()

    asyncio.run(main())
    # Without the drop, every batch is looked at once (40 of 40); with it, only a batch
    # whose first end was delivered before the thread took the rest.
    assert CountingLane.looks < batches / 2
