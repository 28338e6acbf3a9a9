"""Small pieces of watch mode: what counts as a lost connection, listen addresses."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg
import pytest

from fraiseql_checks.watch.plugin import as_listen
from fraiseql_checks.watch.worker import looks_like_lost_connection

if TYPE_CHECKING:
    from fraiseql_checks.watch.workers import WorkerPool


def caused_by(cause: BaseException) -> Exception:
    try:
        try:
            raise cause
        except BaseException as exc:
            raise RuntimeError("query failed") from exc
    except RuntimeError as outer:
        return outer


@pytest.mark.parametrize(
    "error",
    [
        ConnectionResetError("peer"),
        TimeoutError(),
        asyncpg.InterfaceError("connection is closed"),
        asyncpg.exceptions.ConnectionDoesNotExistError("gone"),
        caused_by(ConnectionRefusedError()),
        type("ConnectError", (Exception,), {})("httpx-like"),
    ],
)
def test_lost_connections_are_recognised(error: BaseException) -> None:
    assert looks_like_lost_connection(error)


@pytest.mark.parametrize("error", [AssertionError("1 == 2"), ValueError("bad"), KeyError("x"), caused_by(ValueError())])
def test_other_errors_are_not(error: BaseException) -> None:
    assert not looks_like_lost_connection(error)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:9470", ("127.0.0.1", 9470)),
        (":9470", ("0.0.0.0", 9470)),
        ("[::1]:9470", ("::1", 9470)),
        ("localhost:0", ("localhost", 0)),
    ],
)
def test_listen_addresses(text: str, expected: tuple[str, int]) -> None:
    assert as_listen(text) == expected


@pytest.mark.parametrize("text", ["9470", "host:port", "127.0.0.1:99999", "bad host:1"])
def test_bad_listen_addresses(text: str) -> None:
    with pytest.raises(ValueError, match="HOST:PORT"):
        as_listen(text)


def test_the_watcher_rebuilds_only_its_own_message_types_from_a_worker() -> None:
    import os
    import pickle
    from pathlib import Path

    from fraiseql_checks.result import Outcome, Result
    from fraiseql_checks.watch import wire

    result = Result("checks/check_a.py::check_a", "check_a", Outcome.PASSED, started_at=1.0, labels={"a": "b"})
    frame = pickle.dumps([("result", 1, wire.result_fields(result), [], None), ("path", Path("/x"))])
    assert wire.result_from(wire.decode_from_worker(frame)[0][2]) == result
    for forged in (result, (), wire.result_fields(result)[:-1], list(wire.result_fields(result))):
        with pytest.raises(TypeError):
            wire.result_from(forged)

    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, ("echo pwned",))

    with pytest.raises(pickle.UnpicklingError, match=r"posix\.system"):
        wire.decode_from_worker(pickle.dumps([Evil()]))


def _pool(tmp_path: Path, *, concurrency: int = 100, say: Callable[[str], None] = lambda text: None) -> WorkerPool:
    """A pool of one worker that is never started: its ``WorkerProcess`` objects are driven by hand."""
    from fraiseql_checks.watch.workers import WorkerPool

    return WorkerPool(
        count=1,
        concurrency=concurrency,
        args=[],
        cwd=tmp_path,
        rootdir=tmp_path,
        memory_limit=0,
        import_timeout=30.0,
        say=say,
        mask=lambda text: text,
        on_blocked=lambda check, seconds: None,
        on_teardown=lambda result: None,
        on_collected=lambda collection: None,
    )


def test_runs_go_to_a_worker_in_frames_of_at_most_half_the_concurrency_slots(tmp_path: Path) -> None:
    """Not all the slots' runs in one frame: the worker starts on the first half while the
    watcher still hands out the second (the two processes no longer take turns)."""
    import asyncio
    import socket

    from fraiseql_checks.frames import BlockingChannel
    from fraiseql_checks.watch.workers import WorkerProcess

    async def main() -> list[list[tuple[object, ...]]]:
        worker = WorkerProcess(_pool(tmp_path, concurrency=10), "1")
        ours, theirs = socket.socketpair()
        _, worker._writer = await asyncio.open_connection(sock=ours)
        for seq in range(1, 13):  # one turn of the loop: twelve runs for ten slots' worth of frames
            worker.send(("run", seq, "checks/check_a.py::check_a"))
        await asyncio.sleep(0)  # the turn ends: what is left goes
        await worker._writer.drain()
        theirs.settimeout(10.0)  # a frame that never comes fails the test, not hangs it
        channel = BlockingChannel(theirs)
        frames: list[list[tuple[object, ...]]] = []
        while sum(map(len, frames)) < 12:
            frames.append(await asyncio.to_thread(channel.receive))
        worker._writer.close()
        theirs.close()
        return frames

    frames = asyncio.run(main())
    assert [len(frame) for frame in frames] == [5, 5, 2]
    assert [message[1] for frame in frames for message in frame] == list(range(1, 13))


def test_a_result_the_watcher_cannot_read_still_settles_its_run_as_an_error(tmp_path: Path) -> None:
    import time

    from fraiseql_checks.result import Outcome, Result
    from fraiseql_checks.watch import wire
    from fraiseql_checks.watch.workers import Run, WorkerProcess

    said: list[str] = []
    worker = WorkerProcess(_pool(tmp_path, say=said.append), "1")
    settled: list[object] = []
    check_id = "checks/check_a.py::check_a"
    for seq, fields in (
        (1, ("not", "a", "result")),
        (2, wire.result_fields(Result(check_id, "check_a", Outcome.PASSED))),
    ):
        worker.inflight[seq] = Run(
            seq, check_id, 30.0, lambda run, outcome: settled.append(outcome), started_at=time.time()
        )
        worker._on(("result", seq, fields, [], None))
    (broken, rebuilt, whole), (good, _, _) = settled  # type: ignore[misc]
    assert broken.outcome is Outcome.ERROR and broken.name == "check_a" and rebuilt == [] and whole is None
    assert "worker 1 sent a result the watcher cannot read: a result is a tuple of" in broken.message
    assert broken.extra["worker"] == "1"
    assert good.outcome is Outcome.PASSED and not worker.inflight and not said


@pytest.mark.parametrize(
    ("frames", "per_frame", "step", "exited", "turns_between"),
    [
        (1, 200, 0.0, False, True),  # one big frame: at a reading of the clock past the step
        (5, 10, 0.0, False, True),  # small frames (fewer messages than a reading of the clock): between frames
        (5, 40, 3600.0, False, False),  # the step not over yet: every frame in one go
        (5, 40, 0.0, True, False),  # the process exited: its last words in one go, before _wait goes on
    ],
)
def test_a_workers_results_are_handled_in_steps_that_let_the_loop_turn(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    frames: int,
    per_frame: int,
    step: float,
    exited: bool,
    turns_between: bool,
) -> None:
    """Frames of many results are not handled in one go: the reader gives the event loop a
    turn (a scrape, the scheduler, the other workers) once its step has taken ``turns.STEP``
    (and not before), and every result is still settled, in order, exactly once."""
    import asyncio
    import time

    from fraiseql_checks.result import Outcome, Result
    from fraiseql_checks.watch import turns, wire
    from fraiseql_checks.watch.workers import Run, WorkerProcess

    monkeypatch.setattr(turns, "STEP", step)
    check_id = "checks/check_a.py::check_a"
    fields = wire.result_fields(Result(check_id, "check_a", Outcome.PASSED))
    count = frames * per_frame

    async def main() -> tuple[list[int], list[int]]:
        worker = WorkerProcess(_pool(tmp_path), "1")
        worker._draining = exited
        settled: list[int] = []
        for seq in range(1, count + 1):
            worker.inflight[seq] = Run(
                seq, check_id, 30.0, lambda run, outcome: settled.append(run.seq), started_at=time.time()
            )
        reader = asyncio.StreamReader()
        for first in range(1, count + 1, per_frame):
            reader.feed_data(
                wire.encode([("result", seq, fields, [], None) for seq in range(first, first + per_frame)])
            )
        reader.feed_eof()
        seen: list[int] = []  # how many results were settled each time another callback ran

        def other() -> None:
            seen.append(len(settled))
            if len(settled) < count:
                asyncio.get_running_loop().call_soon(other)

        asyncio.get_running_loop().call_soon(other)
        await worker._read(reader)
        return settled, seen

    settled, seen = asyncio.run(main())
    assert settled == list(range(1, count + 1))
    assert any(0 < n < count for n in seen) is turns_between, seen


def test_a_step_is_over_once_it_has_taken_its_length(monkeypatch: pytest.MonkeyPatch) -> None:
    """The watcher's tasks share its loop in steps (``watch.turns``): the reader of each
    worker, the scheduler."""
    import time

    from fraiseql_checks.watch import turns

    clock = [100.0]
    monkeypatch.setattr(time, "perf_counter", lambda: clock[0])
    monkeypatch.setattr(turns, "STEP", 0.001)
    step = turns.Step()
    clock[0] += 0.0009
    assert not step.over()
    clock[0] += 0.0001
    assert step.over()
    step.begin()  # resumed after a turn of the loop: a whole step again
    assert not step.over()
    clock[0] += 0.002
    assert step.over()
