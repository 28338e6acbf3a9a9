"""The queue in front of the store, against a real PostgreSQL that is stopped and started."""

from __future__ import annotations

import asyncio
from pathlib import Path

from fraiseql_checks.result import Outcome
from fraiseql_checks.stores import SLITotals, StoredResult
from fraiseql_checks.stores.buffer import BufferedWriter
from fraiseql_checks.stores.postgres import PostgresStore
from fraiseql_checks.stores.sqlite import SQLiteStore
from fraiseql_checks.watch.state import State, StateChange
from tests.services import throwaway_postgres

T0 = 1_750_000_000.0


def result(index: int) -> StoredResult:
    return StoredResult("checks/check_x.py::check_x", T0 + index, 0.01, Outcome.PASSED, trace_id=f"run-{index}")


def test_results_wait_in_memory_while_the_store_is_down_and_the_oldest_go_past_the_bound() -> None:
    with throwaway_postgres() as server:

        async def main() -> None:
            warnings: list[str] = []
            writer = BufferedWriter(PostgresStore(server.dsn, timeout=2.0), limit=10, batch=4, warn=warnings.append)
            await writer.open()
            assert writer.up
            for index in range(3):
                writer.add(result(index))
            assert await writer.write_once() and writer.written == 3 and writer.backlog == 0

            await asyncio.to_thread(server.stop)
            writer.add(StateChange("checks/check_x.py::check_x", T0 + 3, State.PASSING, State.FAILING))
            for index in range(4, 16):
                writer.add(result(index))
            assert not await writer.write_once()
            assert not writer.up and writer.errors == 1 and "unavailable" in warnings[-1]
            # 13 items for a bound of 10: the three oldest are dropped and counted
            assert writer.backlog == 10 and writer.dropped == 3

            await asyncio.to_thread(server.start)
            assert await writer.flush(timeout=30.0) == 0
            assert writer.up and writer.written == 13 and "is back" in warnings[-1]
            stored = await writer.store.results("checks/check_x.py::check_x", 0, T0 * 2)
            assert [round(r.started_at - T0) for r in stored] == [0, 1, 2, *range(6, 16)]
            assert await writer.store.state_changes(0, T0 * 2) == []  # it was among the dropped
            await writer.store.close()

        asyncio.run(main())


def test_the_writer_task_retries_until_the_store_takes_everything() -> None:
    with throwaway_postgres() as server:
        server.stop()

        async def main() -> None:
            writer = BufferedWriter(PostgresStore(server.dsn, timeout=2.0), limit=1000, batch=50, every=0.05)
            await writer.open()  # the server is down: not fatal
            assert not writer.up and writer.errors == 1
            task = asyncio.create_task(writer.run())
            for index in range(200):
                writer.add(result(index))
            while writer.errors < 3:  # it keeps trying, and keeps everything
                await asyncio.sleep(0.05)
            assert writer.backlog == 200 and writer.dropped == 0
            await asyncio.to_thread(server.start)
            while writer.backlog:
                await asyncio.sleep(0.05)
            task.cancel()
            stored = await writer.store.results("checks/check_x.py::check_x", 0, T0 * 2)
            assert len(stored) == 200 and writer.written == 200
            await writer.store.close()

        asyncio.run(main())


def test_the_writer_prunes_results_past_the_retention_and_rollups_past_theirs(tmp_path: Path) -> None:
    day = 86400.0
    hour = 1_749_996_000.0  # an hour boundary
    runs = [
        StoredResult("c", hour + offset, 0.01, Outcome.PASSED, trace_id=str(offset), interval_s=60.0)
        for offset in (0.0, -day, -2 * day, -3 * day)
    ]

    async def main() -> tuple[list[StoredResult], dict[str, list[SLITotals]]]:
        store = SQLiteStore(tmp_path / "results.db")
        now = hour + 1800
        writer = BufferedWriter(
            store, 100, every=0.01, retention=day / 2, rollup_retention=2.5 * day, clock=lambda: now
        )
        await writer.open()
        for run in runs:
            writer.add(run)
        task = asyncio.create_task(writer.run())
        async with asyncio.timeout(30):  # a regression fails here instead of hanging the suite
            while writer.backlog or writer._next_prune == 0:
                await asyncio.sleep(0.01)
        task.cancel()
        try:
            return await store.results("c", 0, now * 2), await store.sli_totals(["c"], [(hour - 4 * day, now)])
        finally:
            await store.close()

    left, totals = asyncio.run(main())
    assert [r.started_at for r in left] == [hour]
    assert totals == {"c": [SLITotals(good_s=180.0, good_runs=3)]}  # the rollup of 3 days ago is gone
