"""The SQLite store's thread beside a busy event loop.

A loop with work ready lets go of the GIL at every turn (``epoll_wait(0)``) and takes it
back at once, so CPython's thread waiting for the GIL never asks for it: the store's
thread, which needs the GIL back after each call into SQLite, waited for seconds per
statement. While a call is in flight the loop now sleeps for a moment every
``GIL_YIELD_EVERY`` without the GIL (docs/performance.md, "The store's thread starved of
the GIL").
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

from fraiseql_checks.result import Outcome
from fraiseql_checks.stores import StoredResult
from fraiseql_checks.stores import sqlite as sqlite_store
from fraiseql_checks.stores.sqlite import SQLiteStore

#: The busy task's slices: pure-Python work of about a millisecond, then a turn of the loop.
SLICE = 20_000
#: Results in the write. Starved, a write of this many took ~50 s (~50,000 slices) here;
#: with the loop yielding, ~0.3 s (a few hundred slices).
RESULTS = 5_000
#: The write must end within this many slices: ten seconds' worth, far from both.
MOST_SLICES = 10_000


def results(count: int) -> list[StoredResult]:
    return [
        StoredResult(
            check_id=f"checks/check_busy.py::check_{i % 500}",
            started_at=1_700_000_000.0 + i * 0.01,
            duration_s=0.001,
            outcome=Outcome.PASSED if i % 10 else Outcome.FAILED,
            message="",
            trace_id=f"{i:032x}",
        )
        for i in range(count)
    ]


def test_the_loop_lets_go_of_the_gil_while_a_call_is_in_flight_and_stops_after(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "results.db")
    released = threading.Event()

    async def main() -> tuple[int, int, int]:
        await store.open()
        call = asyncio.ensure_future(store._call(lambda _lane: released.wait(30)))
        await asyncio.sleep(sqlite_store.GIL_YIELD_EVERY * 10)  # the loop is idle; its timers fire
        lane = store._lane
        assert lane is not None
        during = lane.gil_yields
        released.set()
        await call
        after = lane.gil_yields
        await asyncio.sleep(sqlite_store.GIL_YIELD_EVERY * 5)
        assert asyncio.get_running_loop() not in lane._yielding  # the timer stopped
        await store.close()
        return during, after, lane.gil_yields

    during, after, later = asyncio.run(main())
    assert during >= 1
    assert later == after  # no call in flight: no more sleeps on the loop


def test_a_write_beside_a_busy_loop_is_not_starved(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "results.db")
    batch = results(RESULTS)

    async def main() -> int:
        await store.open()
        done = asyncio.Event()
        slices = 0

        async def busy() -> None:
            nonlocal slices
            while not done.is_set() and slices < MOST_SLICES:
                sum(range(SLICE))
                slices += 1
                await asyncio.sleep(0)

        spinner = asyncio.ensure_future(busy())
        await asyncio.sleep(0)
        await store.write(batch, [])
        done.set()
        await spinner
        stored = len(await store.results(batch[0].check_id, 0, time.time()))
        await store.close()
        assert stored == RESULTS // 500
        return slices

    slices = asyncio.run(main())
    assert slices < MOST_SLICES, "the store's thread waited for the GIL while the loop was busy"
