"""The SQLite store's writer process (watch mode): what it stores is what the store's own
thread stores, and a writer process that dies, is killed or outlives its watcher loses
nothing that was confirmed and leaves nothing behind."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from fraiseql_checks import frames
from fraiseql_checks.result import Outcome
from fraiseql_checks.states import State, StateRecord
from fraiseql_checks.stores import StoredResult, StoreUnavailable, sqlite_writer
from fraiseql_checks.stores.sqlite import SQLiteStore
from tests.support import REPO

T0 = 1_750_000_000.0
CHECK = "checks/check_x.py::check_x"


def result(index: int, outcome: Outcome = Outcome.PASSED) -> StoredResult:
    return StoredResult(CHECK, T0 + index, 0.01, outcome, trace_id=f"run-{index}", interval_s=1.0)


def writer_pid(store: SQLiteStore) -> int:
    writer = store._writer
    assert writer is not None and writer.pid is not None
    return writer.pid


async def first_write(store: SQLiteStore) -> sqlite_writer.WriterProcess:
    """Open ``store`` and write one result through its writer process: the process it started."""
    await store.open()
    await store.write([result(0)], [])
    writer = store._writer
    assert writer is not None
    return writer


def until(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"still waiting after {timeout}s for {what}"
        time.sleep(0.02)


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def rows(path: Path) -> tuple[int, int]:
    """Results stored, and the good runs the hourly rollups counted."""
    conn = sqlite3.connect(path)
    try:
        results = conn.execute("SELECT count(*) FROM results").fetchone()[0]
        good = conn.execute("SELECT coalesce(sum(good_runs), 0) FROM slo_rollups").fetchone()[0]
        return int(results), int(good)
    finally:
        conn.close()


def test_a_watchers_store_writes_in_its_own_process_the_same_rows_as_the_thread(tmp_path: Path) -> None:
    batches = [[result(i + 10 * b, Outcome.FAILED if i % 3 else Outcome.PASSED) for i in range(10)] for b in range(3)]
    # a write of more rows than the loop builds at a time: sent in slices, stored whole
    many = sqlite_writer.SLICE * 2 + 7
    big = [
        StoredResult(f"checks/many.py::check_{i}", T0 + i, 0.01, Outcome.PASSED, trace_id=f"r{i}") for i in range(many)
    ]
    states = [
        StateRecord(f"checks/many.py::check_{i}", State.PASSING, State.PASSING, 0, i, (T0,), (T0, T0 + i), T0, T0 + i)
        for i in range(sqlite_writer.SLICE + 3)
    ]

    async def write(store: SQLiteStore) -> int | None:
        await store.open()
        try:
            for batch in [*batches, batches[1]]:  # one batch twice: stored once, counted once
                await store.write(batch, [])
            await store.write(big, [], [*states, dataclasses.replace(states[1], consecutive_successes=0)])
            return writer_pid(store) if store.writer_process else None
        finally:
            await store.close()

    dumps = []
    for apart in (False, True):
        path = tmp_path / f"apart-{apart}.db"
        pid = asyncio.run(write(SQLiteStore(path, writer_process=apart)))
        if apart:
            assert pid is not None and gone(pid)  # closing the store ended it
        conn = sqlite3.connect(path)
        dumps.append(
            [
                conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()
                for table in ("results", "slo_rollups", "slo_daily_rollups", "check_states")
            ]
        )
        conn.close()
    assert dumps[0] == dumps[1]
    passed = sum(r.outcome is Outcome.PASSED for batch in batches for r in batch)
    assert len(dumps[1][0]) == 30 + many
    assert sum(row[4] for row in dumps[1][1]) == passed + many == 12 + many  # each counted once
    stored_states = {row[0]: row for row in dumps[1][3]}
    assert len(stored_states) == len(states)
    assert stored_states[states[1].check_id][4] == 0  # of two states of a check, the newest (it sorts first)
    assert stored_states[states[-1].check_id][5:7] == ("[1750000000.0]", f"[1750000000.0, {T0 + len(states) - 1}]")


def test_a_writer_process_killed_between_writes_is_started_again(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "results.db", writer_process=True)

    async def main() -> tuple[int, int]:
        await store.open()
        try:
            await store.write([result(0)], [])
            first = writer_pid(store)
            psutil.Process(first).kill()
            await asyncio.to_thread(until, lambda: gone(first), "the writer process to die")
            await store.write([result(1)], [])  # no error: a new one takes it
            return first, writer_pid(store)
        finally:
            await store.close()

    first, second = asyncio.run(main())
    assert first != second
    assert rows(store.path) == (2, 2)


def test_a_writer_process_killed_during_a_write_fails_it_and_the_retry_stores_it_once(tmp_path: Path) -> None:
    path = tmp_path / "results.db"
    store = SQLiteStore(path, busy_timeout=120.0, writer_process=True)

    async def main() -> str:
        await store.open()
        await store.write([result(0)], [])  # the writer process is running
        pid = writer_pid(store)
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")  # the next write waits for this lock
        try:
            child = psutil.Process(pid)
            switches = child.num_ctx_switches().voluntary
            write = asyncio.ensure_future(store.write([result(1), result(2)], []))
            # SQLite's busy handler sleeps again and again while it waits for the lock (an
            # idle writer process sleeps once, in its read): then the write is in there
            await asyncio.to_thread(
                until, lambda: child.num_ctx_switches().voluntary - switches >= 8, "the write to wait for the lock"
            )
            assert not write.done()
            psutil.Process(pid).send_signal(signal.SIGKILL)
            with pytest.raises(StoreUnavailable) as failed:
                await write
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        await store.write([result(1), result(2)], [])  # as the buffered writer retries
        await store.write([result(1), result(2)], [])  # and once more: stored once all the same
        await store.close()
        return str(failed.value)

    message = asyncio.run(main())
    assert message == (
        "the store's writer process was killed by SIGKILL during a write; it is started again at the next"
    )
    assert rows(path) == (3, 3)


WATCHER = """
import asyncio, os, signal, sys
from pathlib import Path
from fraiseql_checks.result import Outcome
from fraiseql_checks.stores import StoredResult
from fraiseql_checks.stores.sqlite import SQLiteStore

async def main():
    store = SQLiteStore(Path(sys.argv[1]), writer_process=True)
    await store.open()
    await store.write([StoredResult("c", 1.0, 0.1, Outcome.PASSED)], [])
    print(store._writer.pid, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # no close: as a watcher killed with kill -9

asyncio.run(main())
"""


def test_the_writer_process_dies_with_its_watcher(tmp_path: Path) -> None:
    process = subprocess.run(
        [sys.executable, "-c", WATCHER, str(tmp_path / "results.db")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert process.returncode == -signal.SIGKILL, process.stderr
    pid = int(process.stdout)
    until(lambda: gone(pid), "the writer process to end with its watcher")
    assert rows(tmp_path / "results.db") == (1, 1)  # what it confirmed is stored


def test_a_store_that_cannot_be_opened_by_the_writer_process_says_why_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "results.db"
    store = SQLiteStore(path, writer_process=True)

    async def main() -> str:
        await store.open()
        # after the store's thread opened it, the file becomes a newer schema's
        conn = sqlite3.connect(path)
        conn.execute("PRAGMA user_version=999")
        conn.close()
        try:
            with pytest.raises(Exception) as failed:
                await store.write([result(0)], [])
            return f"{type(failed.value).__name__}: {failed.value}"
        finally:
            await store.close()

    message = asyncio.run(main())
    assert message.startswith(f"UsageError: the result store {path} has schema 999, from a newer fraiseql-checks")
    assert "\n" not in message


def test_the_writer_processs_command_line_names_it() -> None:
    assert sqlite_writer.BOOTSTRAP.splitlines()[0] == "# fraiseql-check: the SQLite store's writer process"


def test_a_write_its_caller_gave_up_on_is_ended_by_the_reset_quietly_and_lands_nothing(tmp_path: Path) -> None:
    """As the buffered writer does with a write that gets no answer in time: stop waiting,
    reset the store. The write is ended (it was not committing), and its failure, which
    nobody waits for any more, is not reported as an exception never retrieved."""
    path = tmp_path / "results.db"
    store = SQLiteStore(path, busy_timeout=120.0, writer_process=True)

    async def main() -> tuple[bool, list[dict[str, object]]]:
        reported: list[dict[str, object]] = []
        asyncio.get_running_loop().set_exception_handler(lambda _loop, context: reported.append(context))
        await store.open()
        await store.write([result(0)], [])
        pid = writer_pid(store)
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(store.write([result(1)], []), 0.3)
            maybe_stored = await store.reset()
            # ended while it waited for the lock, not when the lock is let go
            await asyncio.to_thread(until, lambda: gone(pid), "the writer process given up on to end", 20)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        await store.write([result(2)], [])
        await store.close()
        gc.collect()
        await asyncio.sleep(0)
        return maybe_stored, reported

    maybe_stored, reported = asyncio.run(main())
    assert not maybe_stored and reported == []
    assert rows(path) == (2, 2)  # the first and the last; the one given up on never lands


def test_a_reset_while_a_write_commits_says_it_may_be_stored_and_the_writer_process_ends_after_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "results.db"
    store = SQLiteStore(path, writer_process=True)

    async def main() -> tuple[bool, int]:
        writer = await first_write(store)
        pid = writer_pid(store)
        write = asyncio.ensure_future(store.write([result(1)], []))
        while not writer._committing:  # told "yes", waiting for the child's "done"
            assert not write.done()
            await asyncio.sleep(0)
        maybe_stored = await store.reset()
        await write  # not killed: it commits and answers
        # and then it is ended, though its WriterProcess is still referenced here
        await asyncio.to_thread(until, lambda: gone(pid), "the writer process to end after its write", 20)
        await store.close()
        return maybe_stored, gone(pid)

    maybe_stored, ended = asyncio.run(main())
    assert maybe_stored and ended
    assert rows(path) == (2, 2)


STUCK_WATCHER = """
import asyncio, os, sys
from pathlib import Path
from fraiseql_checks.result import Outcome
from fraiseql_checks.stores import StoredResult
from fraiseql_checks.stores.sqlite import SQLiteStore

async def main():
    store = SQLiteStore(Path(sys.argv[1]), busy_timeout=120.0, writer_process=True)
    await store.open()
    await store.write([StoredResult("c", 1.0, 0.1, Outcome.PASSED)], [])
    print(store._writer.pid, flush=True)
    sys.stdin.readline()  # the test holds the lock now
    await store.write([StoredResult("c", 2.0, 0.1, Outcome.PASSED)], [])  # waits for the lock

asyncio.run(main())
"""


def test_a_writer_process_waiting_for_a_lock_dies_with_its_watcher_at_once(tmp_path: Path) -> None:
    """Killed with kill -9 while its writer process waits for a lock (up to 120 s here): the
    writer process ends with it, not when the wait ends (PR_SET_PDEATHSIG)."""
    path = tmp_path / "results.db"
    process = subprocess.Popen(
        [sys.executable, "-c", STUCK_WATCHER, str(path)],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    holder: sqlite3.Connection | None = None
    try:
        assert process.stdout is not None and process.stdin is not None
        pid = int(process.stdout.readline())
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        child = psutil.Process(pid)
        switches = child.num_ctx_switches().voluntary
        process.stdin.write("go\n")  # only now: the second write must find the lock taken
        process.stdin.flush()
        until(lambda: child.num_ctx_switches().voluntary - switches >= 8, "the second write to wait for the lock")
        process.kill()
        process.wait(30)
        until(lambda: gone(pid), "the writer process to die with its watcher", timeout=20)
    finally:
        process.kill()
        process.wait(30)
        if holder is not None:
            holder.execute("ROLLBACK")
            holder.close()
    assert rows(path) == (1, 1)


def test_modules_in_the_working_directory_do_not_run_in_the_writer_process(tmp_path: Path) -> None:
    """The watcher runs where the user's checks are; the writer process imports modules of
    the standard library that a ``queue.py`` or a ``secrets.py`` there would shadow."""
    marker = tmp_path / "ran.txt"
    for name in ("queue", "secrets", "logging", "random", "datetime", "json"):
        (tmp_path / f"{name}.py").write_text(f"open({str(marker)!r}, 'a').write('{name} ')\nraise SystemExit(3)\n")
    path = tmp_path / "results.db"
    # -P for the watcher's own process: only its writer process is tested here
    process = subprocess.run(
        [sys.executable, "-P", "-c", f"import sys; sys.path.insert(0, {str(REPO)!r})\n" + WATCHER, str(path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert process.returncode == -signal.SIGKILL, process.stderr
    assert not marker.exists(), marker.read_text()
    assert rows(path) == (1, 1)


def test_a_batch_too_large_for_a_frame_is_written_whole_on_the_stores_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(frames, "MAX_FRAME", 4096)  # a few results' worth, instead of 256 MiB
    store = SQLiteStore(tmp_path / "results.db", writer_process=True)

    async def main() -> None:
        await store.open()
        try:
            await store.write([result(0)], [])  # small: through the writer process
            await store.write([result(i) for i in range(1, 200)], [])  # too large for a frame
        finally:
            await store.close()

    asyncio.run(main())
    assert rows(store.path) == (200, 200)


@contextlib.contextmanager
def served(path: Path) -> Iterator[tuple[socket.socket, frames.BlockingChannel]]:
    """The writer process's side (``serve``) of a new store at ``path``, run on a thread
    of this process: the watcher's end of its channel; closed at the end, and the thread
    returns. ``serve`` sets the collector as for a process of its own: set back after."""
    gc_before = gc.get_threshold()
    opener = SQLiteStore(path)
    asyncio.run(opener.open())
    asyncio.run(opener.close())
    ours, theirs = socket.socketpair()
    child = threading.Thread(target=sqlite_writer.serve, args=(frames.BlockingChannel(theirs), path, 5.0))
    child.start()
    try:
        yield ours, frames.BlockingChannel(ours)
    finally:
        ours.close()
        child.join(20)
        theirs.close()
        gc.unfreeze()
        gc.set_threshold(*gc_before)
    assert not child.is_alive()  # the watcher's end closed: it returned


def test_the_writer_process_rolls_back_a_write_told_no_at_its_commit(tmp_path: Path) -> None:
    """The child's side of the handshake, driven by hand: a write answered "no" (the store
    was reset between the child's question and the answer) lands nothing and is reported
    as given up on; the next write, answered "yes", lands."""
    path = tmp_path / "results.db"
    with served(path) as (ours, channel):
        ours.sendall(asyncio.run(sqlite_writer.encode_write([result(0)], [], [], [])))
        assert channel.receive() == ("commit?",)
        channel.send(("no",))
        answer = channel.receive()
        assert answer[:2] == ("error", "gaveup")
        assert rows(path) == (0, 0)
        ours.sendall(asyncio.run(sqlite_writer.encode_write([result(1)], [], [], [])))
        assert channel.receive() == ("commit?",)
        channel.send(("yes",))
        assert channel.receive() == ("done",)
        assert rows(path) == (1, 1)


def test_the_writer_process_keeps_the_garbage_collector_rare_as_the_watcher_does(tmp_path: Path) -> None:
    """Its start-up frozen and the thresholds of watch mode's other processes
    (``watch.heap``), not Python's (700, 10, 10): with those, the rows of its batches made
    a young collection every 700 of them and a full one about once a second in a
    saturated watcher's writer process."""
    from fraiseql_checks.watch import heap

    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        with served(tmp_path / "results.db") as (ours, channel):
            ours.sendall(asyncio.run(sqlite_writer.encode_write([result(0)], [], [], [])))
            assert channel.receive() == ("commit?",)
            channel.send(("yes",))
            assert channel.receive() == ("done",)
            assert gc.get_threshold() == heap.GC_THRESHOLDS != (700, 10, 10)
            assert gc.get_freeze_count() > 0
    finally:
        gc.set_threshold(*before)


def test_closing_gives_up_on_a_write_still_running_after_the_timeout(tmp_path: Path) -> None:
    """A write stuck past the close's timeout (here: waiting for a lock held elsewhere) is
    given up on: the child is killed, the write fails with a one-line error and lands
    nothing, and the close does not wait for the lock."""
    path = tmp_path / "results.db"
    store = SQLiteStore(path, busy_timeout=120.0, writer_process=True)

    async def main() -> tuple[str, bool]:
        writer = await first_write(store)
        pid = writer_pid(store)
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            write = asyncio.ensure_future(store.write([result(1)], []))
            while writer._turn is None or not writer._turn.locked():  # its frame is on its way to the child
                await asyncio.sleep(0.01)
            await writer.close(0.5)
            with pytest.raises(StoreUnavailable) as failed:
                await write
            ended = await asyncio.to_thread(gone, pid)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        await store.close()
        return str(failed.value), ended

    message, ended = asyncio.run(main())
    assert ended and "\n" not in message
    assert "locked" not in message  # given up on at the close's timeout, not failed at the lock's
    assert rows(path) == (1, 1)  # the stuck write never landed


def test_a_write_that_reaches_a_closed_writer_process_fails_and_starts_none(tmp_path: Path) -> None:
    """A write whose rows were still being made when the store closed (``encode_write``
    yields to the loop between slices) must not start a writer process nobody ends."""
    path = tmp_path / "results.db"
    store = SQLiteStore(path, writer_process=True)

    async def main() -> int | None:
        writer = await first_write(store)
        many = [result(i) for i in range(1, sqlite_writer.SLICE * 3)]
        write = asyncio.ensure_future(store.write(many, []))
        await asyncio.sleep(0)  # its first slice made: it yields the loop before the next
        assert not write.done()
        await store.close()  # while the write still makes its slices
        with pytest.raises(StoreUnavailable, match="the store is closed"):
            await write
        return writer.pid

    pid = asyncio.run(main())
    assert pid is None  # no child started after the close
    assert rows(path) == (1, 1)
