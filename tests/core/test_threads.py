"""The lane of worker threads for sync checks: threads start as calls block, not per job."""

from __future__ import annotations

import asyncio
import threading

from fraiseql_checks.core._threads import ThreadLane

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
