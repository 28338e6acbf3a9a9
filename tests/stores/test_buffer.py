"""The queue in front of the store, against a real PostgreSQL that is stopped, started,
locked and made to hang, and a real SQLite file locked by another connection."""

from __future__ import annotations

import asyncio
import contextlib
import json
import select
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import psutil
import pytest

from fraiseql_checks.outbox import Kind, OutboxEntry
from fraiseql_checks.result import Outcome
from fraiseql_checks.stores import SLITotals, StateRecord, Store, StoredResult, StoreUnavailable, sqlite_writer
from fraiseql_checks.stores.buffer import BufferedWriter, WriterTotals
from fraiseql_checks.stores.postgres import PostgresStore
from fraiseql_checks.stores.sqlite import SQLiteStore
from fraiseql_checks.watch.state import CheckState, Rules, State, StateChange
from tests.support import REPO
from tests.support.services import PG_DSN, throwaway_postgres

T0 = 1_750_000_000.0
T = TypeVar("T")


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


# -- check states across a kill -9 -----------------------------------------------------

#: Watches 21 checks for 60 runs, writing every result, change and state through a
#: BufferedWriter; prints the states once the store has them all, then waits to be killed.
WATCHER = """
import asyncio, dataclasses, json, random, sys
from pathlib import Path
from fraiseql_checks.result import Outcome
from fraiseql_checks.stores import StoredResult
from fraiseql_checks.stores.buffer import BufferedWriter
from fraiseql_checks.stores.postgres import PostgresStore
from fraiseql_checks.stores.sqlite import SQLiteStore
from fraiseql_checks.watch.state import CheckState, Rules

async def main(url, apart):
    store = PostgresStore(url) if url.startswith("postgresql") else SQLiteStore(Path(url), writer_process=apart)
    writer = BufferedWriter(store, 100_000, batch=50, every=0.01)
    await writer.open()
    task = asyncio.create_task(writer.run())
    rng = random.Random(7)
    rules = Rules(failure_threshold=3, flap_changes=4, flap_window=300.0)
    machines = [CheckState(f"c{n}", rules) for n in range(20)] + [CheckState("always-failing", rules)]
    for run in range(60):
        at = 1_750_000_000.0 + 30.0 * run
        for machine in machines:
            outcome = Outcome.FAILED if machine.check_id == "always-failing" else rng.choice(
                [Outcome.PASSED, Outcome.PASSED, Outcome.FAILED, Outcome.SKIPPED]
            )
            change = machine.observe(outcome, at)
            writer.add(StoredResult(machine.check_id, at, 0.1, outcome))
            if change is not None:
                writer.add(change)
            writer.add(machine.snapshot())
    while writer.backlog:
        await asyncio.sleep(0.01)
    print(json.dumps([dataclasses.asdict(machine.snapshot()) for machine in machines]), flush=True)
    await asyncio.sleep(3600)

asyncio.run(main(sys.argv[1], sys.argv[2] == "writer-process"))
"""


def record_of(raw: dict[str, Any]) -> StateRecord:
    return StateRecord(
        **{**raw, "base": State(raw["base"]), "state": State(raw["state"])}
        | {"failures": tuple(raw["failures"]), "changes": tuple(raw["changes"])}
    )


def test_check_states_survive_a_kill_9_of_the_watcher(make_store: Callable[[], Store]) -> None:
    made = make_store()
    apart = "writer-process" if getattr(made, "writer_process", False) else "thread"  # as the watcher's store writes
    process = subprocess.Popen(
        [sys.executable, "-c", WATCHER, made.url, apart],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 120)
        assert ready, "the watcher never said its states were written"
        line = process.stdout.readline()
        assert line, process.communicate()[1]
        written = {raw["check_id"]: record_of(raw) for raw in json.loads(line)}
    finally:
        process.send_signal(signal.SIGKILL)  # no flush, no close: what the store has is what it keeps
        process.communicate(timeout=30)

    async def main() -> dict[str, StateRecord]:
        store = make_store()
        await store.open()
        try:
            return await store.load_states()
        finally:
            await store.close()

    loaded = asyncio.run(main())
    assert loaded == written
    assert any(record.state is State.FLAPPING for record in loaded.values())  # the data is not trivial
    rules = Rules(failure_threshold=3, flap_changes=4, flap_window=300.0)
    failing = CheckState("always-failing", rules)
    failing.restore(loaded["always-failing"])
    assert failing.consecutive_failures == 60 and failing.state is State.FAILING
    assert failing.observe(Outcome.FAILED, 1_750_000_000.0 + 30.0 * 60) is None  # nobody is told again
    assert failing.consecutive_failures == 61


def test_only_the_newest_state_of_each_check_waits_to_be_written(tmp_path: Path) -> None:
    machines = [CheckState(f"c{n}", Rules()) for n in range(3)]

    async def main() -> tuple[int, int, dict[str, StateRecord]]:
        writer = BufferedWriter(SQLiteStore(tmp_path / "results.db"), limit=10)
        await writer.open()
        for index in range(1000):  # far past the queue's bound: states do not queue
            for machine in machines:
                machine.observe(Outcome.PASSED if index % 3 else Outcome.FAILED, T0 + index)
                writer.add(machine.snapshot())
        backlog = writer.backlog
        assert await writer.write_once()
        try:
            return backlog, writer.written, await writer.store.load_states()
        finally:
            await writer.store.close()

    backlog, written, loaded = asyncio.run(main())
    assert backlog == written == 3
    assert loaded == {machine.check_id: machine.snapshot() for machine in machines}
    assert loaded["c0"].consecutive_failures == 1 and loaded["c0"].updated_at == T0 + 999


def test_a_live_state_is_written_as_it_is_when_its_batch_is_taken(tmp_path: Path) -> None:
    machine = CheckState("c0", Rules())

    async def main() -> list[StateRecord]:
        writer = BufferedWriter(SQLiteStore(tmp_path / "results.db"), limit=10)
        await writer.open()
        stored = []
        try:
            machine.observe(Outcome.FAILED, T0)
            writer.add_state(machine.check_id, machine)
            machine.observe(Outcome.PASSED, T0 + 1)  # after it was handed over, before its batch: in it
            assert await writer.write_once()
            stored.append((await writer.store.load_states())["c0"])
            machine.observe(Outcome.FAILED, T0 + 2)  # not handed over again: nothing to write
            assert await writer.write_once() and writer.backlog == 0
            stored.append((await writer.store.load_states())["c0"])
            writer.add_state(machine.check_id, machine)
            assert await writer.write_once()
            stored.append((await writer.store.load_states())["c0"])
            return stored
        finally:
            await writer.store.close()

    first, unchanged, last = asyncio.run(main())
    assert first.updated_at == T0 + 1 and first.consecutive_successes == 1
    assert unchanged == first
    assert last == machine.snapshot() and last.updated_at == T0 + 2


def test_the_live_states_of_a_batch_are_snapshotted_with_turns_of_the_loop_between(tmp_path: Path) -> None:
    from fraiseql_checks.stores import buffer

    count = buffer.STATE_SLICE * 2 + 1
    machines = [CheckState(f"c{n}", Rules()) for n in range(count)]
    ticks = 0
    seen: list[int] = []

    class Watched:
        """A live state that notes how often the loop turned before its snapshot."""

        def __init__(self, machine: CheckState) -> None:
            self.machine = machine

        def snapshot(self) -> StateRecord:
            seen.append(ticks)
            return self.machine.snapshot()

    async def main() -> dict[str, StateRecord]:
        nonlocal ticks
        writer = BufferedWriter(SQLiteStore(tmp_path / "results.db"), limit=10)
        await writer.open()
        stop = False

        async def ticker() -> None:
            nonlocal ticks
            while not stop:
                ticks += 1
                await asyncio.sleep(0)

        task = asyncio.ensure_future(ticker())
        try:
            for index, machine in enumerate(machines):
                machine.observe(Outcome.PASSED, T0 + index)
                writer.add_state(machine.check_id, Watched(machine))
            assert await writer.write_once()
            return await writer.store.load_states()
        finally:
            stop = True
            await task
            await writer.store.close()

    loaded = asyncio.run(main())
    assert loaded == {machine.check_id: machine.snapshot() for machine in machines}
    # one slice's snapshots are taken in one go; the loop turned between slices
    assert len(set(seen)) == 3 and seen[0] == seen[buffer.STATE_SLICE - 1] < seen[buffer.STATE_SLICE] < seen[-1]


@contextlib.asynccontextmanager
async def writing(writer: BufferedWriter) -> AsyncIterator[BufferedWriter]:
    """``writer`` opened and its writing task running; then stopped, and its store closed."""
    await writer.open()
    task = asyncio.ensure_future(writer.run())
    try:
        yield writer
    finally:
        await writer.stop(5.0)
        await task  # it ends once stopped
        await writer.store.close()


async def loop_turns(count: int = 100) -> None:
    """Let the event loop turn ``count`` times: a write woken by nothing would not start."""
    for _ in range(count):
        await asyncio.sleep(0)


def test_an_outbox_entry_wakes_the_writer_and_results_wait_for_the_next_write(tmp_path: Path) -> None:
    """A notification is sent once its entry is stored: the entry does not wait for the
    writer's next write (``every``, an hour here), while results alone do."""
    entry = OutboxEntry("e1", "ops", "checks/check_x.py::check_x", Kind.FIRING, T0, T0)

    async def main() -> tuple[int, int, OutboxEntry | None, int]:
        async with writing(BufferedWriter(SQLiteStore(tmp_path / "results.db"), limit=100, every=3600.0)) as writer:
            for index in range(3):
                writer.add(result(index))
            await loop_turns()  # no write starts for the results alone
            before = writer.written
            writer.add(entry)
            while writer.written == before:  # bounded by the test's timeout, not a clock here
                await asyncio.sleep(0.01)
            stored = await writer.store.outbox_entry(entry.id)
            return before, writer.written, stored, writer.backlog

    before, written, stored, backlog = asyncio.run(asyncio.wait_for(main(), 60))
    assert before == 0
    assert stored == entry
    assert written == 4 and backlog == 0  # the results went with it


def test_a_write_starts_when_half_a_small_buffer_waits(tmp_path: Path) -> None:
    """A ``store_buffer`` smaller than a batch: the write starts when half of it waits,
    not at the next ``every`` (an hour here), by which time the oldest would be dropped."""

    async def main() -> tuple[int, int, int, int]:
        async with writing(BufferedWriter(SQLiteStore(tmp_path / "results.db"), limit=100, every=3600.0)) as writer:
            for index in range(49):
                writer.add(result(index))
            await loop_turns()  # 49 do not start a write
            before = writer.written
            writer.add(result(49))
            while writer.backlog:  # bounded by the test's timeout
                await asyncio.sleep(0.01)
            stored = await writer.store.results("checks/check_x.py::check_x", 0, T0 + 100)
            return before, writer.written, writer.dropped, len(stored)

    before, written, dropped, stored = asyncio.run(asyncio.wait_for(main(), 60))
    assert before == 0
    assert written == stored == 50 and dropped == 0


# -- writes that get no answer: a lock held by another connection ----------------------


class Locked:
    """A store, and another connection that can lock it out of its results table."""

    store: Store

    async def hold(self) -> None:
        raise NotImplementedError

    async def release(self) -> None:
        """Let go of the lock (if held)."""
        raise NotImplementedError

    async def run(self, body: Callable[[], Awaitable[T]]) -> T:
        """``body()``, never leaving the lock held (a test that fails must not hang the
        teardown), within a minute."""
        try:
            async with asyncio.timeout(60):
                return await body()
        finally:
            await self.release()
            await self.store.close()

    async def blocked(self, writer: BufferedWriter) -> bool:
        """The writer's write waits for the lock."""
        raise NotImplementedError

    async def gone(self) -> bool:
        """Every connection the store opened is closed, those it gave up on included."""
        raise NotImplementedError

    async def rows(self) -> tuple[int, int]:
        """Results and states stored."""
        raise NotImplementedError


class PostgresLocked(Locked):
    """``LOCK TABLE ... IN ACCESS EXCLUSIVE MODE``: the writer's INSERT waits."""

    def __init__(self, dsn: str) -> None:
        self.schema = dsn.rsplit("search_path=", 1)[1]
        self.application = f"fraiseql-test-{uuid.uuid4().hex[:8]}"
        self.store = PostgresStore(f"{dsn}&application_name={self.application}")
        self._holder: asyncpg.Connection | None = None

    async def hold(self) -> None:
        self._holder = holder = await asyncpg.connect(PG_DSN)
        await holder.execute("BEGIN")
        await holder.execute(f"LOCK TABLE {self.schema}.fraiseql_check_results IN ACCESS EXCLUSIVE MODE")

    async def release(self) -> None:
        holder, self._holder = self._holder, None
        if holder is not None:
            await holder.execute("ROLLBACK")
            await holder.close()

    async def _count(self, sql: str) -> int:
        conn = await asyncpg.connect(PG_DSN)
        try:
            return int(await conn.fetchval(sql, self.application))
        finally:
            await conn.close()

    async def blocked(self, writer: BufferedWriter) -> bool:
        sql = "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) WHERE NOT l.granted"
        return await self._count(sql + " AND a.application_name = $1") > 0

    async def gone(self) -> bool:
        return await self._count("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1") == 0

    async def rows(self) -> tuple[int, int]:
        conn = await asyncpg.connect(PG_DSN)
        try:
            results = await conn.fetchval(f"SELECT count(*) FROM {self.schema}.fraiseql_check_results")
            states = await conn.fetchval(f"SELECT count(*) FROM {self.schema}.fraiseql_check_states")
            return int(results), int(states)
        finally:
            await conn.close()


class SQLiteLocked(Locked):
    """Another connection in ``BEGIN EXCLUSIVE`` on the file; the store waits for locks
    far longer than the writer waits for an answer, as on a hung disk."""

    def __init__(self, path: Path, writer_process: bool = False) -> None:
        self.path = path
        self.store = SQLiteStore(path, busy_timeout=120.0, writer_process=writer_process)
        self._holder: sqlite3.Connection | None = None

    async def hold(self) -> None:
        self._holder = sqlite3.connect(self.path, isolation_level=None)
        self._holder.execute("BEGIN EXCLUSIVE")

    async def release(self) -> None:
        holder, self._holder = self._holder, None
        if holder is not None:
            holder.execute("ROLLBACK")
            holder.close()

    async def blocked(self, writer: BufferedWriter) -> bool:
        return writer.writing  # with the lock held, a write in progress is a write waiting

    async def gone(self) -> bool:
        name = f"fraiseql-check-sqlite {self.path}"  # the store's threads, those it gave up on included
        return not any(thread.name == name for thread in threading.enumerate()) and not writer_processes(self.path)

    async def rows(self) -> tuple[int, int]:
        conn = sqlite3.connect(self.path)
        try:
            results = conn.execute("SELECT count(*) FROM results").fetchone()[0]
            states = conn.execute("SELECT count(*) FROM check_states").fetchone()[0]
            return int(results), int(states)
        finally:
            conn.close()


def writer_processes(path: Path) -> list[psutil.Process]:
    """This process's SQLite writer processes of the store at ``path`` still running (zombies are gone)."""
    found = []
    for child in psutil.Process().children():
        with contextlib.suppress(psutil.Error):
            command = child.cmdline()
            if child.status() != psutil.STATUS_ZOMBIE and sqlite_writer.BOOTSTRAP in command and str(path) in command:
                found.append(child)
    return found


@pytest.fixture(params=["sqlite", "sqlite-writer-process", "postgres"])
def locked(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Locked]:
    if request.param.startswith("sqlite"):
        yield SQLiteLocked(tmp_path / "results.db", writer_process=request.param == "sqlite-writer-process")
    else:
        yield PostgresLocked(request.getfixturevalue("pg_schema"))


async def until(condition: Callable[[], Awaitable[bool] | bool], what: str, timeout: float = 60.0) -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if not isinstance(value, bool):
            value = await value
        if value:
            return
        assert time.monotonic() < deadline, f"still waiting after {timeout}s for {what}"
        await asyncio.sleep(0.02)


def fill(writer: BufferedWriter, count: int = 30) -> None:
    for index in range(count):
        writer.add(result(index))
    writer.add(StateRecord("checks/check_x.py::check_x", State.PASSING, State.PASSING, 0, count, (), (), T0, T0 + 29))


async def finish(locked: Locked) -> tuple[int, int]:
    """Close the store, wait until every connection it had is gone, and count the rows:
    what the store really kept, whatever the writer thinks."""
    await locked.store.close()
    await until(locked.gone, "the store's connections to end")
    return await locked.rows()


def test_stopping_lets_a_slow_write_finish(locked: Locked) -> None:
    async def main() -> tuple[WriterTotals, tuple[int, int]]:
        writer = BufferedWriter(locked.store, limit=1000, every=0.01)
        await writer.open()
        await locked.hold()
        fill(writer)
        task = asyncio.create_task(writer.run())
        await until(lambda: locked.blocked(writer), "the write to wait for the lock")
        task.cancel()  # as the watcher stops its writer task: the write goes on
        stopping = asyncio.create_task(writer.stop(timeout=60))
        await until(lambda: not writer.up or writer.writing, "the stop to begin")
        await locked.release()
        totals = await stopping
        return totals, await finish(locked)

    totals, rows = asyncio.run(locked.run(main))
    assert totals == WriterTotals(written=31, dropped=0, not_written=0)
    assert rows == (30, 1)


def test_stopping_at_the_deadline_gives_up_on_the_write_and_says_it_was_not_written(locked: Locked) -> None:
    async def main() -> tuple[WriterTotals, tuple[int, int], BufferedWriter]:
        writer = BufferedWriter(locked.store, limit=1000, every=0.01)
        await writer.open()
        writer.add(result(100))
        assert await writer.write_once()  # one result stored before
        await locked.hold()
        fill(writer)
        task = asyncio.create_task(writer.run())
        await until(lambda: locked.blocked(writer), "the write to wait for the lock")
        totals = await writer.stop(timeout=0.3)
        await task  # stop ends the writer's task too
        await locked.release()  # the write given up on may now go on: it must not commit
        return totals, await finish(locked), writer

    totals, rows, writer = asyncio.run(locked.run(main))
    assert totals == WriterTotals(written=1, dropped=0, not_written=31, in_doubt=0)
    assert str(totals) == "1 stored, 0 dropped, 31 not written"
    assert rows == (1, 0)
    assert writer.backlog == 31 and not writer.up


def test_a_write_without_an_answer_is_given_up_on_and_retried_until_stored_once(locked: Locked) -> None:
    async def main() -> tuple[list[str], tuple[int, int], dict[str, StateRecord]]:
        warnings: list[str] = []
        writer = BufferedWriter(locked.store, limit=1000, every=0.01, write_timeout=0.3, warn=warnings.append)
        await writer.open()
        await locked.hold()
        fill(writer)
        task = asyncio.create_task(writer.run())
        await until(lambda: writer.errors >= 2, "the write to be given up on, twice")
        assert not writer.up and writer.last_error == "no answer to a write within 300ms"
        assert writer.backlog == 31 and writer.written == 0
        newer = StateRecord("checks/check_x.py::check_x", State.PASSING, State.PASSING, 0, 31, (), (), T0, T0 + 30)
        writer.add(newer)  # while the store hangs: it replaces the state of the batch given up on
        await locked.release()
        await until(lambda: writer.backlog == 0, "the writer to write everything")
        assert writer.up and writer.written == 31
        states = await writer.store.load_states()
        stopped = await writer.stop(timeout=5)
        await task
        assert stopped == WriterTotals(written=31, dropped=0, not_written=0)
        return warnings, await finish(locked), states

    warnings, rows, states = asyncio.run(locked.run(main))
    assert rows == (30, 1)
    assert [state.consecutive_successes for state in states.values()] == [31]
    assert "no answer to a write within 300ms" in warnings[0] and "is back" in warnings[-1]


def test_a_write_given_up_on_while_it_commits_is_reported_as_maybe_stored() -> None:
    """A COMMIT that waits for a synchronous standby that is not there: given up on at
    the deadline, its rows may still land, and do once the standby is no longer required."""
    with throwaway_postgres() as server:
        application = "fraiseql-test-commit"

        async def count(sql: str, *args: object) -> int:
            conn = await asyncpg.connect(server.dsn)
            try:
                return int(await conn.fetchval(sql, *args))
            finally:
                await conn.close()

        async def main() -> WriterTotals:
            writer = BufferedWriter(PostgresStore(f"{server.dsn}?application_name={application}"), 1000, every=0.01)
            await writer.open()
            await asyncio.to_thread(server.psql, "ALTER SYSTEM SET synchronous_standby_names = 'nobody'")
            await asyncio.to_thread(server.psql, "SELECT pg_reload_conf()")
            fill(writer)
            task = asyncio.create_task(writer.run())
            waiting = "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND wait_event = 'SyncRep'"

            async def committing() -> bool:
                return await count(waiting, application) > 0

            await until(committing, "the COMMIT to wait for the standby")
            totals = await writer.stop(timeout=0.3)
            await task
            await asyncio.to_thread(server.psql, "ALTER SYSTEM RESET synchronous_standby_names")
            await asyncio.to_thread(server.psql, "SELECT pg_reload_conf()")

            async def gone() -> bool:
                return (
                    await count("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", application) == 0
                )

            await until(gone, "the commit to end")
            assert await count("SELECT count(*) FROM fraiseql_check_results") == 30  # it was stored after all
            await writer.store.close()
            return totals

        totals = asyncio.run(main())
    assert totals == WriterTotals(written=0, dropped=0, not_written=31, in_doubt=31)
    assert str(totals).endswith(
        "31 not written (31 of them may have been stored: the store never confirmed their commit)"
    )


def test_sqlite_calls_queued_behind_a_stuck_one_fail_at_reset_instead_of_waiting(tmp_path: Path) -> None:
    """A reader (the SLO exporter) queued behind a write that gets no answer is not left
    waiting for it: once the store is reset, it fails and may try again."""
    locked = SQLiteLocked(tmp_path / "results.db")

    async def main() -> str:
        store = locked.store
        assert isinstance(store, SQLiteStore)
        await store.open()
        await locked.hold()
        write = asyncio.ensure_future(store.write([result(0)], []))
        await asyncio.sleep(0)  # the write is queued for the store's thread
        lane = store._lane
        assert lane is not None
        await until(lane._jobs.empty, "the store's thread to take the write, which waits for the lock")
        read = asyncio.ensure_future(store.results("checks/check_x.py::check_x", 0, T0 * 2))
        await asyncio.sleep(0)
        assert not read.done()
        assert not await store.reset()  # it was not committing
        with pytest.raises(StoreUnavailable) as failed:
            await read  # with the lock still held: only the reset can have ended it
        write.cancel()
        return str(failed.value)

    message = asyncio.run(locked.run(main))
    assert "reset" in message
