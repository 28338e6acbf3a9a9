"""A worker process driven over its socket as the watcher drives it, without a watcher:
what comes back when the watcher reads slowly.

The worker's loop writes each turn's results itself when the socket takes them at once,
and leaves them to its sender thread when it does not (the socket is full, or the sender
is writing); the part of a frame the socket did not take is the sender's to finish. So
a full socket never holds the loop, and whichever way a result goes, it arrives once,
whole, and before the worker's goodbye.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import socket
import struct
import subprocess
import sys
import termios
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from fraiseql_checks.frames import BlockingChannel
from fraiseql_checks.watch import worker as worker_module
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


@pytest.fixture
def worker(checkdir: CheckDir) -> Iterator[tuple[BlockingChannel, subprocess.Popen[bytes], list[str]]]:
    """A worker of ten bulky checks, collected: its channel, its process, the checks' ids."""
    checkdir.write("checks/check_bulky.py", "".join(BULKY.format(i=i) for i in range(10)))
    ours, theirs = socket.socketpair()
    process = subprocess.Popen(
        [sys.executable, "-c", _BOOTSTRAP, str(REPO), str(theirs.fileno())],
        pass_fds=(theirs.fileno(),),
        cwd=checkdir.path,
        env=checkdir.env(),
        stdout=subprocess.DEVNULL,
    )
    theirs.close()
    channel = BlockingChannel(ours)
    start = {"name": "test", "args": [], "cwd": str(checkdir.path), "sys_path": list(sys.path), "skip": {}}
    channel.send([{**start, "file_values": None, "watcher_pid": os.getpid()}])
    try:
        ids: list[str] = []
        while not ids:
            for message in channel.receive():
                assert message[0] != "fatal", message[1]
                if message[0] == "collected":
                    ids = [info.id for info in message[1]]
        yield channel, process, ids
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        process.wait(10)
        ours.close()


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
    # are more than it takes): the worker's writes then wait for the reads below. (Which
    # way each frame goes depends on timing here; the tests below take each way alone.)
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


def test_a_frame_the_socket_takes_in_part_is_finished_first_without_holding_the_caller() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        channel = BlockingChannel(ours)
        ours.setblocking(True)
        filler = [("say", "x" * 10_000)]
        while channel.try_send(filler):  # until the socket takes nothing more
            assert not channel.unfinished or not channel.try_send(filler)  # nothing after a part
        assert not channel.unfinished
        reader = BlockingChannel(theirs)
        for _ in range(8):  # room for part of a big frame
            assert reader.receive() == filler
        big = [("result", n, f"{n:04}" + "y" * 1000) for n in range(1000)]  # 1 MB: more than that room
        began = threading.Event()
        threading.Thread(target=lambda: (channel.try_send(big), began.set()), daemon=True).start()
        assert began.wait(10), "try_send waited for the reader"
        assert channel.unfinished
        assert not channel.try_send([("say", "after")])  # nothing may come between: refused
        later = threading.Thread(target=channel.send, args=([("say", "last")],), daemon=True)
        later.start()  # finishes the big frame first, then sends its own
        received: list[object] = []
        while ("say", "last") not in received:
            received.extend(reader.receive())
        later.join(10)
        assert [m for m in received if m[0] == "result"] == big  # type: ignore[index]
        assert received[-1] == ("say", "last")
        assert not channel.unfinished


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


def a_worker(sock: socket.socket) -> worker_module.Worker:
    """A worker object on ``sock`` with a loop of its own, not started (no threads)."""
    worker = worker_module.Worker(BlockingChannel(sock), {"name": "test", "args": [], "cwd": "."})
    worker.loop = asyncio.new_event_loop()
    return worker


def one_turn(worker: worker_module.Worker) -> None:
    assert worker.loop is not None
    worker.loop.run_until_complete(asyncio.sleep(0))


def queued(worker: worker_module.Worker) -> list[object]:
    items = []
    while not worker.outbox.empty():
        items.append(worker.outbox.get_nowait())
    return items


def fill(channel: BlockingChannel) -> None:
    while channel.try_send([("say", "x" * 10_000)]):
        pass


def test_results_the_socket_refuses_go_to_the_sender_thread_in_order() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        worker = a_worker(ours)
        fill(worker.channel)  # nobody reads: the socket takes nothing more
        replies = [("result", seq, (), [], None) for seq in range(3)]
        for reply in replies:
            worker.reply(reply)
        one_turn(worker)
        assert queued(worker) == replies
        assert worker.loop is not None
        worker.loop.close()


def test_the_rest_of_a_frame_taken_in_part_wakes_the_sender_thread() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        worker = a_worker(ours)
        fill(worker.channel)
        reader = BlockingChannel(theirs)
        for _ in range(8):  # room for part of a big frame
            reader.receive()
        worker.reply(("result", 1, tuple(f"{n:04}" + "y" * 1000 for n in range(1000)), [], None))
        one_turn(worker)
        assert worker.channel.unfinished
        assert len(queued(worker)) == 1  # the sender is woken to write the rest (a beat would be 0.5 s away)
        assert worker.loop is not None
        worker.loop.close()


def test_results_not_yet_sent_at_exit_go_before_the_goodbye() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        worker = a_worker(ours)
        replies = [("result", seq, (), [], None) for seq in range(3)]
        for reply in replies:
            worker.reply(reply)  # the loop stops before its turn ends
        assert worker._finish(0) == 0
        assert queued(worker) == [*replies, ("stopped",), None]
        assert worker.loop is not None
        worker.loop.close()
