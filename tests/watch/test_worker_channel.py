"""A worker process driven over its socket as the watcher drives it, without a watcher:
what comes back when the watcher reads slowly (every result once, whole, before the
worker's goodbye), and a batch too large for one frame."""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import struct
import subprocess
import sys
import termios
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from fraiseql_checks.frames import BlockingChannel
from fraiseql_checks.watch.workers import _BOOTSTRAP
from tests.support.checkdir import CheckDir
from tests.support.services import wait_until

REPO = Path(__file__).resolve().parents[2]
#: Each result carries a message and a traceback of some kilobytes: a few hundred of
#: them fill a Unix socket's buffer (~200 KB by default on Linux).
BULKY = """
def check_bulky_{i}():
    assert False, "{i} " + "x" * 3000
"""


class _Channel(BlockingChannel):
    """The watcher's end, giving back first what came in the frame of the collection after
    it: a worker that is asked to stop while it collects may send its goodbye in that
    frame."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__(sock)
        self.pending: list[Any] = []

    def receive(self) -> Any:
        if self.pending:
            pending, self.pending = self.pending, []
            return pending
        return super().receive()


@contextlib.contextmanager
def collected_worker(
    checkdir: CheckDir, early: Sequence[list[tuple[object, ...]]] = ()
) -> Iterator[tuple[BlockingChannel, subprocess.Popen[bytes], list[str]]]:
    """A worker process of ``checkdir``'s checks, started and collected as the watcher
    starts one: its channel, its process, the checks' ids; killed at the end. ``early``:
    frames sent right after the start, while the worker collects."""
    ours, theirs = socket.socketpair()
    process = subprocess.Popen(
        [sys.executable, "-c", _BOOTSTRAP, str(REPO), str(theirs.fileno())],
        pass_fds=(theirs.fileno(),),
        cwd=checkdir.path,
        env=checkdir.env(),
        stdout=subprocess.DEVNULL,
    )
    theirs.close()
    channel = _Channel(ours)
    start = {"name": "test", "args": [], "cwd": str(checkdir.path), "sys_path": list(sys.path), "skip": {}}
    channel.send([{**start, "file_values": None, "watcher_pid": os.getpid()}])
    for frame in early:
        channel.send(frame)
    try:
        ids: list[str] = []
        while not ids:
            messages = channel.receive()
            for index, message in enumerate(messages):
                assert message[0] != "fatal", message[1]
                if message[0] == "collected":
                    ids = [info.id for info in message[1]]
                    channel.pending = messages[index + 1 :]  # the test reads them
                    break
        yield channel, process, ids
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        process.wait(10)
        ours.close()


@pytest.fixture
def worker(checkdir: CheckDir) -> Iterator[tuple[BlockingChannel, subprocess.Popen[bytes], list[str]]]:
    """A worker of ten bulky checks, collected: its channel, its process, the checks' ids."""
    checkdir.write("checks/check_bulky.py", "".join(BULKY.format(i=i) for i in range(10)))
    with collected_worker(checkdir) as started:
        yield started


def unread(sock: socket.socket) -> int:
    """Bytes waiting in ``sock`` to be read."""
    return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0" * 4))[0]


def test_results_sent_while_the_watcher_does_not_read_all_arrive_once_before_the_goodbye(
    worker: tuple[BlockingChannel, subprocess.Popen[bytes], list[str]],
) -> None:
    channel, process, ids = worker
    runs = 2000
    channel.send([("run", seq, ids[seq % len(ids)]) for seq in range(100)])
    # Nothing is read until the socket holds 150 KB (100 results of some kilobytes each
    # are more than it takes): the worker's writes then wait for the reads below.
    wait_until(lambda: unread(channel.sock) > 150_000, timeout=30, what="a full socket")
    for first in range(100, runs, 100):
        channel.send([("run", seq, ids[seq % len(ids)]) for seq in range(first, first + 100)])
    channel.send([("stop",)])
    answered: Counter[int] = Counter()
    stopped = False
    while not stopped:
        for message in channel.receive():
            if message[0] == "result":
                assert not stopped, "a result after the worker's goodbye"
                seq, fields = message[1], message[2]
                answered[seq] += 1
                own = ids[seq % len(ids)].rsplit("_", 1)[1]
                assert f"{own} {'x' * 3000}" in str(fields), fields  # whole, and its own check's
            elif message[0] == "stopped":
                stopped = True
    assert process.wait(30) == 0
    assert sorted(answered) == list(range(runs))
    assert set(answered.values()) == {1}


@pytest.mark.parametrize("slow", ["a fraiseql_result hook", "the repr of an extra field"])
def test_a_slow_result_hook_does_not_hold_back_the_results_its_batch_made_before_it(
    checkdir: CheckDir, slow: str
) -> None:
    """The results of a batch of ``def`` runs go to the sender together at the batch's
    end; code not ours that is slow to make one of them ready (a conftest's
    ``fraiseql_result`` hook, the repr of what the run put in its extra fields) must not
    keep the others of the batch from the watcher meanwhile."""
    gate = checkdir.path / "gate"
    # Waits for the test to open the gate (20 s at most): the slow code of check_b's result.
    wait = f"while not os.path.exists({str(gate)!r}) and time.monotonic() < deadline: time.sleep(0.01)"
    if slow == "a fraiseql_result hook":
        check_b = "def check_b():\n    pass\n\n"
        checkdir.write(
            "checks/conftest.py",
            "import os, time\nfrom fraiseql_checks import hookimpl\n\n"
            "@hookimpl\ndef fraiseql_result(result, check):\n"
            "    if check is not None and check.name == 'check_b':\n"
            "        deadline = time.monotonic() + 20\n"
            f"        {wait}\n",
        )
    else:
        check_b = (
            "class Gated:\n    def __repr__(self):\n"
            "        deadline = time.monotonic() + 20\n"
            f"        {wait}\n"
            "        return 'gated'\n\n"
            "def check_b():\n    current().extra['gated'] = Gated()\n\n"
        )
    checkdir.write(
        "checks/check_batch.py",
        "import os, time\nfrom fraiseql_checks.trace import current\n\n"
        "def check_a():\n    pass\n\n" + check_b + "async def check_hold():\n"
        "    time.sleep(0.3)  # holds the loop: a and b end meanwhile, in one batch\n",
    )
    with collected_worker(checkdir) as (channel, _process, ids):
        by_name = {check_id.rsplit("::", 1)[1]: check_id for check_id in ids}
        channel.send(
            [("run", 1, by_name["check_hold"]), ("run", 2, by_name["check_a"]), ("run", 3, by_name["check_b"])]
        )
        channel.sock.settimeout(10)  # a's result comes while b's slow code waits for the gate (20 s at most)
        got: list[int] = []
        try:
            while 2 not in got:
                got += [message[1] for message in channel.receive() if message[0] == "result"]
        finally:
            gate.touch()
        assert 3 not in got  # b's slow code still waited: a came first
        channel.sock.settimeout(30)
        while 3 not in got:
            got += [message[1] for message in channel.receive() if message[0] == "result"]


def test_a_batch_larger_than_a_frame_may_be_goes_in_several() -> None:
    """Results near their size caps (~200 KB each) can make a batch larger than the
    256 MiB a reader takes in one frame; it arrives whole, in order, in several."""
    ours, theirs = socket.socketpair()
    with ours, theirs:
        messages = [("say", f"{n:05}" + "x" * 100_000) for n in range(2800)]  # 280 MB
        writer = threading.Thread(target=BlockingChannel(ours).send, args=(messages,), daemon=True)
        writer.start()
        reader = BlockingChannel(theirs)
        received: list[object] = []
        frames = 0
        while len(received) < len(messages):
            received.extend(reader.receive())  # refuses a frame over MAX_FRAME
            frames += 1
        writer.join(30)
        assert frames > 1
        assert received == messages


@pytest.mark.parametrize("when", ["after collecting", "while collecting"])
def test_a_run_cancelled_before_it_started_does_not_hold_the_workers_stop(checkdir: CheckDir, when: str) -> None:
    """A run and the watcher's cancel (a second stop signal) in one frame: the run's task
    is cancelled before its first step, so its own clean-up never runs. The worker used to
    keep it among the runs under way and, asked to stop, waited (spinning) for it until
    the checks' timeout and 5 s more; here that would be over two minutes. Frames that
    reach the worker while it still collects are handled before its runner is made: the
    run waited for the runner there, and the cancel did not drop it."""
    checkdir.write(
        "checks/check_slow.py",
        'import asyncio\nfrom fraiseql_checks import check\n\n@check(timeout="120s")\n'
        "async def check_slow():\n    await asyncio.sleep(60)\n",
    )
    frames = [[("run", 1, "checks/check_slow.py::check_slow"), ("cancel",)], [("stop",)]]
    with collected_worker(checkdir, frames if when == "while collecting" else ()) as (channel, process, _ids):
        if when == "after collecting":
            for frame in frames:
                channel.send(frame)
        channel.sock.settimeout(5)
        deadline = time.monotonic() + 30  # the bound of the test, not a measure of speed
        seen: list[str] = []
        while "stopped" not in seen:
            assert time.monotonic() < deadline, f"no goodbye in 30 s: the worker waits for the cancelled run; {seen}"
            with contextlib.suppress(TimeoutError):
                seen.extend(str(message[0]) for message in channel.receive())
        assert "result" not in seen  # a cancelled run has no result (the watcher expects none)
        assert process.wait(30) == 0
