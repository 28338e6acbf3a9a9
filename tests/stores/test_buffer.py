"""The queue in front of the store, against a real PostgreSQL that is stopped and started."""

from __future__ import annotations

import asyncio

from fraiseql_checks.result import Outcome
from fraiseql_checks.stores import StoredResult
from fraiseql_checks.stores.buffer import BufferedWriter
from fraiseql_checks.stores.postgres import PostgresStore
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
