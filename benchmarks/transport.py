"""How results travel from a worker process to the watcher: the choice, measured.

    .venv/bin/python benchmarks/transport.py

A child process sends 100,000 real ``Result`` objects (as a worker does) to this
process, which reads and unpickles them on an asyncio loop (as the watcher does),
over four transports:

- a Unix socket pair, pickled batches of whatever is queued (what ``watch.wire`` does);
- the same, one frame per result (no batching);
- an ``os.pipe()`` pair with the same batches;
- ``multiprocessing.Queue``, one ``put`` per result.

Prints, per transport, the wall time, the results per second, and the CPU seconds
of each side (the watcher's side is the one that matters: it is shared by every
worker). Median of three rounds.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import socket
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from fraiseql_checks.result import Outcome, Result  # noqa: E402
from fraiseql_checks.watch import wire  # noqa: E402

COUNT = 100_000
BATCH = 1000  # what a busy worker's sender thread finds queued at once, roughly


def result(n: int) -> Result:
    return Result(
        id=f"checks/check_part_{n % 100:03d}.py::check_trivial_{n}",
        name=f"check_trivial_{n}",
        outcome=Outcome.PASSED if n % 10 else Outcome.FAILED,
        message="" if n % 10 else "assert 1 == 2",
        duration_s=0.0004,
        severity="warning",
        trace_id=f"{n:032x}",
        span_id=f"{n:016x}",
        started_at=1_750_000_000.0 + n,
        values={"latency_seconds": 0.01} if n % 3 == 0 else {},
    )


def send_frames(fd: int, batch: int) -> None:
    with socket.socket(fileno=fd) if _is_socket(fd) else open(fd, "wb", buffering=0) as out:  # type: ignore[attr-defined]
        write = out.sendall if isinstance(out, socket.socket) else out.write
        pending = []
        for n in range(COUNT):
            pending.append(("result", n, result(n), [], None))
            if len(pending) >= batch:
                write(wire.encode(pending))
                pending = []
        if pending:
            write(wire.encode(pending))


def _is_socket(fd: int) -> bool:
    import stat

    return stat.S_ISSOCK(os.fstat(fd).st_mode)


async def read_frames(reader: asyncio.StreamReader) -> int:
    received = 0
    while received < COUNT:
        length = wire.length_of(await reader.readexactly(wire.HEADER_SIZE))
        received += len(wire.decode(await reader.readexactly(length)))
    return received


def child_cpu(pid: int) -> float:
    _, _, usage = os.wait4(pid, 0)
    return usage.ru_utime + usage.ru_stime


def over_socket(batch: int) -> tuple[float, float, float]:
    ours, theirs = socket.socketpair()
    start, cpu = time.perf_counter(), time.process_time()
    pid = os.fork()
    if pid == 0:
        ours.close()
        send_frames(theirs.detach(), batch)
        os._exit(0)
    theirs.close()

    async def main() -> None:
        reader, writer = await asyncio.open_unix_connection(sock=ours)
        await read_frames(reader)
        writer.close()

    asyncio.run(main())
    wall, ours_cpu = time.perf_counter() - start, time.process_time() - cpu
    return wall, ours_cpu, child_cpu(pid)


def over_pipe(batch: int) -> tuple[float, float, float]:
    read_fd, write_fd = os.pipe()
    start, cpu = time.perf_counter(), time.process_time()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        send_frames(write_fd, batch)
        os._exit(0)
    os.close(write_fd)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=2**26)
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), open(read_fd, "rb", buffering=0)
        )
        await read_frames(reader)
        transport.close()

    asyncio.run(main())
    wall, ours_cpu = time.perf_counter() - start, time.process_time() - cpu
    return wall, ours_cpu, child_cpu(pid)


def _queue_sender(queue: multiprocessing.Queue[object]) -> None:
    for n in range(COUNT):
        queue.put(("result", n, result(n), [], None))


def over_queue(batch: int) -> tuple[float, float, float]:
    context = multiprocessing.get_context("fork")
    queue: multiprocessing.Queue[object] = context.Queue()
    start, cpu = time.perf_counter(), time.process_time()
    process = context.Process(target=_queue_sender, args=(queue,))
    process.start()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for _ in range(COUNT):  # the watcher cannot block on get(): a thread hands them over
            await loop.run_in_executor(None, queue.get)

    asyncio.run(main())
    wall, ours_cpu = time.perf_counter() - start, time.process_time() - cpu
    process.join()
    assert process.pid is not None
    return wall, ours_cpu, float("nan")


def measure(name: str, run: Callable[[int], tuple[float, float, float]], batch: int) -> str:
    rounds = [run(batch) for _ in range(3)]
    wall = statistics.median(r[0] for r in rounds)
    ours = statistics.median(r[1] for r in rounds)
    theirs = statistics.median(r[2] for r in rounds)
    sender = "-" if theirs != theirs else f"{theirs:.2f} s"
    each = ours / COUNT * 1e6
    return f"| {name} | {wall:.2f} s | {COUNT / wall:,.0f}/s | {ours:.2f} s ({each:.1f} µs each) | {sender} |"


def main() -> None:
    print(f"{COUNT:,} results from a child process; median of 3 rounds; load average {os.getloadavg()[0]:.2f}")
    print()
    print("| transport | wall | results/s | watcher CPU | worker CPU |")
    print("|---|---|---|---|---|")
    print(measure(f"socket pair, batches of {BATCH} (chosen)", over_socket, BATCH))
    print(measure("socket pair, one frame per result", over_socket, 1))
    print(measure(f"pipe, batches of {BATCH}", over_pipe, BATCH))
    print(measure("multiprocessing.Queue, one put per result", over_queue, 1))


if __name__ == "__main__":
    main()
