"""The watcher's worker processes: start them, hand them runs, watch them, replace them.

Check code runs only in workers (``watch.worker``); the watcher keeps the control
plane. Every worker collects every check, as pytest-xdist's workers do; the
checks of one file run in one worker (so a module's globals and module fixtures
are one), and files are spread so the workers carry about as many checks each.

A worker is replaced when it

- exits (``os._exit`` in a check, a crash),
- stops answering: its event loop held past the running checks' timeouts plus a
  grace, or no word from it at all for as long (a C call that never returns),
- grows past the memory limit,
- or does not finish importing a file within the import timeout.

Its runs that were cut short become ``error`` results saying what happened, for
the check that caused it (the one holding the loop, or the only one running);
other runs cut short are run once more on the new worker before they count as
errors. A check that caused a worker's death, or that keeps holding the event
loop, moves to a worker of its own (*isolated*), so it cannot harm the others
again. A file whose import ended a worker is not imported again: it is reported
as a collection error. Restarts are counted and, when they repeat, delayed.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import os
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import psutil

from fraiseql_checks.config import UsageError
from fraiseql_checks.core.collect import CollectError
from fraiseql_checks.result import Outcome, Result
from fraiseql_checks.watch import stacks, turns, wire

if TYPE_CHECKING:
    from fraiseql_checks.checks import CheckInfo

#: A worker may be silent, or its loop held, this much longer than the longest
#: timeout of the checks it runs before it is replaced.
GRACE = 5.0
#: Isolated checks run in workers named ``isolated-1``, ``isolated-2``, …: one each, up to
#: ``MAX_ISOLATED``; past that they share the one with the fewest.
ISOLATED = "isolated"
MAX_ISOLATED = 4
#: Reports of holding the event loop (within ``_BLOCK_WINDOW``) that isolate a check.
BLOCKS_TO_ISOLATE = 3
_BLOCK_WINDOW = 600.0
#: A frame to a worker holds at most this share of the ``--concurrency`` slots' runs. All
#: the slots' runs in one frame made the watcher and the worker take turns: the worker
#: ran them all while the watcher waited, then the watcher accounted for all the results
#: while the worker waited, each process idle half the time. With two halves, one half
#: runs while the watcher accounts for the other's results (docs/performance.md).
FRAME_SHARE_OF_SLOTS = 0.5
#: A read that took longer than this waited for the worker: the reader's step began anew.
_WAITED = 50e-6
#: Deaths within this window make restarts wait longer.
_DEATH_WINDOW = 60.0
_MAX_BACKOFF = 30.0
#: Worker output forwarded to the log: at most this many lines per ``_OUTPUT_WINDOW``.
_OUTPUT_LINES = 20
_OUTPUT_WINDOW = 10.0
_OUTPUT_LINE = 500
_BOOTSTRAP = (
    "import sys; sys.path.insert(0, sys.argv[1]); from fraiseql_checks.watch.worker import main; "
    "sys.argv[1:] = sys.argv[2:]; main()"
)

RunOutcome = tuple[Result, list[str], str | None]


@dataclasses.dataclass(frozen=True)
class Collection:
    """What a worker collected."""

    checks: list[CheckInfo]
    errors: list[CollectError]
    #: Ids of checks kept from a previous version because their file no longer collects.
    kept: list[str]


@dataclasses.dataclass(eq=False, slots=True)
class Run:
    """One run handed to a worker, until its result comes back.

    ``done`` is called once, when the run is settled: with its outcome, or ``None`` when
    it will have none (cancelled, stopping). It is called at once, not in a later turn
    of the loop: a future per run, its callback and the loop's handle for it cost the
    watcher ~8 µs a run (docs/performance.md).
    """

    seq: int
    check_id: str
    timeout: float
    done: Callable[[Run, RunOutcome | None], None]
    started_at: float = 0.0
    #: When it was handed to its worker, on the monotonic clock (``time.monotonic()``).
    sent_at: float = 0.0
    retried: bool = False
    #: The worker's resident memory when the run started (as last sampled).
    rss_at_start: int = 0
    settled: bool = False

    def finish(self, outcome: RunOutcome | None) -> None:
        """Settle the run (once; later calls do nothing)."""
        if not self.settled:
            self.settled = True
            self.done(self, outcome)


@dataclasses.dataclass(frozen=True)
class Death:
    """Why a worker ended, in words and as a metric label."""

    reason: str
    #: ``exited``, ``unresponsive``, ``memory``, ``import`` (or ``stopped`` for a clean stop).
    kind: str
    culprit: str | None = None


#: What ``_probe`` returns while the stacks it asked for are being written.
_PROBING = "(probing)"
#: A stuck worker's stacks are read again after this long.
_PROBE_EVERY = 5.0
#: How long a probe waits for the stacks before it concludes they name nobody.
_PROBE_WAIT = 3.0
#: How long a worker past its memory limit may stay so while the runs that could have grown it end.
_MEMORY_WAIT = 2.0
#: The worker's beat period (``worker.BEAT``): a beat older than two is stale.
BEAT_EVERY = 0.5


def _stat(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_size, stat.st_mtime_ns


class WorkerProcess:
    """One worker process as the watcher sees it."""

    def __init__(self, pool: WorkerPool, name: str) -> None:
        self.pool = pool
        self.name = name
        self.process: asyncio.subprocess.Process | None = None
        self.ps: psutil.Process | None = None
        self.state = "down"  # down, collecting, ready, stopping
        self.inflight: dict[int, Run] = {}
        self.waiting: collections.deque[Run] = collections.deque()
        #: Runs that wait for this worker to be ready before they take a concurrency slot.
        self.ready_waiters: list[asyncio.Future[None]] = []
        self.importing: tuple[str, float] | None = None
        self.heard = time.monotonic()
        self.stalled = 0.0
        self.holder: str | None = None
        self.rss = 0
        self.deaths: collections.deque[float] = collections.deque()
        self.restarts: collections.Counter[str] = collections.Counter()
        self._killing: Death | None = None
        #: The watcher asked it to stop: its exit is not a death.
        self._asked_to_stop = False
        #: The process exited: its reader takes what is left in one go (``_wait``).
        self._draining = False
        #: The file the worker's ``faulthandler`` writes its stacks to when probed.
        self._dump: IO[bytes] | None = None
        #: When the stuck worker was last probed, and the check its stacks showed running.
        self._probed: tuple[float, str | None] | None = None
        #: Since when the worker is past its memory limit, and the runs in flight while it grew.
        self._over: tuple[float, set[int]] | None = None
        #: The check that said it is ending the process, and with what code.
        self.last_word: tuple[str, int | str] | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._outgoing: list[wire.Message] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._collected: asyncio.Future[Collection | str] | None = None
        self._output_budget = float(_OUTPUT_LINES)
        self._output_checked = time.monotonic()
        self._output_dropped = 0
        self.cpu_before = 0.0  # CPU of the worker processes this one replaced
        #: Checks that were running at every recent death that named no culprit, and since when.
        self.suspects: tuple[set[str], float] = (set(), 0.0)

    @property
    def up(self) -> bool:
        return self.state in ("collecting", "ready")

    # -- start and talk -------------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair()
        package_parent = str(Path(__file__).resolve().parent.parent.parent)
        if self._dump is not None:
            self._dump.close()
        self._dump = tempfile.TemporaryFile()  # where the worker's stacks go when it is stuck
        try:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                _BOOTSTRAP,
                package_parent,
                str(theirs.fileno()),
                pass_fds=(theirs.fileno(), self._dump.fileno()),
                start_new_session=True,  # its own process group: its children die with it
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                cwd=self.pool.cwd,
            )
        finally:
            theirs.close()
        self.ps = psutil.Process(self.process.pid)
        self.state = "collecting"
        self.heard = time.monotonic()
        self.stalled, self.holder, self._killing, self.importing, self.last_word = 0.0, None, None, None, None
        self._asked_to_stop = self._draining = False
        self._probed = None
        self._over = None
        self._collected = loop.create_future()
        ours.setblocking(False)
        reader, self._writer = await asyncio.open_unix_connection(sock=ours)
        self._write(
            [
                {
                    "name": self.name,
                    "args": self.pool.args,
                    "cwd": str(self.pool.cwd),
                    "sys_path": list(sys.path),
                    "skip": dict(self.pool.skip),
                    "file_values": self.pool.file_values,
                    "watcher_pid": os.getpid(),
                    "stacks_fd": self._dump.fileno(),
                }
            ]
        )
        process = self.process
        self._tasks = [
            loop.create_task(self._read(reader)),
            loop.create_task(self._output(process)),
            loop.create_task(self._wait(process)),
        ]

    def _write(self, messages: Any) -> None:
        if self._writer is not None and not self._writer.is_closing():
            self._writer.write(wire.encode(messages))

    def send(self, message: wire.Message) -> None:
        """Queue a message; what is queued in one turn of the loop goes in one frame, or in
        several of ``pool.frame_messages`` each."""
        if not self._outgoing:
            asyncio.get_running_loop().call_soon(self._flush)
        self._outgoing.append(message)
        if len(self._outgoing) >= self.pool.frame_messages:
            self._flush()

    def _flush(self) -> None:
        outgoing, self._outgoing = self._outgoing, []
        if outgoing:
            self._write(outgoing)

    async def collected(self) -> Collection | str:
        """The next collection this worker reports (a string: why it could not start)."""
        assert self._collected is not None
        return await asyncio.shield(self._collected)

    # -- runs -----------------------------------------------------------------------------

    def dispatch(self, run: Run) -> None:
        if self.pool.stopping and self.state != "ready":
            # not at once: the caller may still be accounting for the run it is handing over
            asyncio.get_running_loop().call_soon(run.finish, None)
            return
        if self.state != "ready":
            self.waiting.append(run)
            return
        run.started_at = time.time()
        run.sent_at = time.monotonic()
        run.rss_at_start = self.rss
        self.inflight[run.seq] = run
        self.send(("run", run.seq, run.check_id))

    def _ready(self) -> None:
        self.state = "ready"
        while self.waiting:
            self.dispatch(self.waiting.popleft())
        waiters, self.ready_waiters = self.ready_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    # -- what the worker says ------------------------------------------------------------

    async def _read(self, reader: asyncio.StreamReader) -> None:
        """Handle the worker's messages a ``turns.Step`` at a time: with many runs in flight a
        worker's results come faster than one step handles them, and a step that took them
        all held the loop for tens of milliseconds (docs/performance.md)."""
        clock = time.perf_counter
        step = turns.Step()
        while True:
            asked = clock()
            try:
                length = wire.length_of(await reader.readexactly(wire.HEADER_SIZE))
                body = await reader.readexactly(length)
            except (asyncio.IncompleteReadError, ConnectionError, ValueError, EOFError):
                return  # the worker is gone (or sent a frame no worker sends): _wait sees to it
            if clock() - asked > _WAITED:  # it waited for the frame: a new step of this task
                step.begin()
            self.heard = time.monotonic()
            try:
                messages = wire.decode_from_worker(body)
            except Exception as exc:  # a frame we refuse to rebuild: say so, keep reading
                self.pool.say(f"worker {self.name} sent a frame the watcher refused: {type(exc).__name__}: {exc}")
                continue
            for count, message in enumerate(messages if isinstance(messages, list) else (), 1):
                try:
                    self._on(message)
                except Exception as exc:  # a plugin hook behind it failed: the reader goes on
                    self.pool.say(
                        f"internal error handling a message from worker {self.name}: {type(exc).__name__}: {exc}"
                    )
                if not count % turns.CLOCK_EVERY and step.over() and not self._draining:
                    await step.turn()
            if step.over() and not self._draining:
                await step.turn()

    def _on(self, message: wire.Message) -> None:
        kind = message[0]
        pool = self.pool
        if kind == "result":
            _, seq, fields, rebuilt, whole = message
            run = self.inflight.pop(seq, None)
            if run is not None:
                try:
                    run.finish((wire.result_from(fields), rebuilt, whole))
                except TypeError as exc:  # not what a worker sends: the run still gets a result
                    run.finish(
                        pool.error_outcome(
                            run, self, f"worker {self.name} sent a result the watcher cannot read: {exc}"
                        )
                    )
        elif kind == "beat":
            _, self.stalled, self.holder = message
        elif kind == "importing":
            self.importing = (message[1], time.monotonic())
        elif kind == "collected":
            _, checks, errors, kept = message
            self.importing = None
            self.stalled = 0.0  # collecting is not holding the loop; the next beat says how it is now
            collection: Collection | str = (
                Collection(checks, errors, kept) if checks is not None else f"collecting again failed: {errors}"
            )
            if self._collected is not None and not self._collected.done():
                self._collected.set_result(collection)
            self._collected = asyncio.get_running_loop().create_future()
            pool.on_collected(self, collection)
            if self.state == "collecting":
                self._ready()
        elif kind == "blocked":
            pool.on_blocked(self, message[1], message[2])
        elif kind == "teardown":
            pool.on_teardown(message[1])
        elif kind == "say":
            pool.say(f"worker {self.name}: {message[1]}")
        elif kind == "fatal":
            if self._collected is not None and not self._collected.done():
                self._collected.set_result(message[1])
            pool.on_fatal(self, message[1])
        elif kind == "stopped":
            pass  # the exit follows; whether it was asked for is ``_asked_to_stop``
        elif kind == "exiting":
            self.last_word = (message[1], message[2])

    async def _output(self, process: asyncio.subprocess.Process) -> None:
        """Forward what the worker writes outside any check, a few lines at a time."""
        stream = process.stdout
        assert stream is not None
        pending = b""
        while True:
            try:
                data = await stream.read(65536)
            except (ConnectionError, ValueError):
                return
            if not data:
                break
            if self._budget() < 1 and b"\n" in data:  # a flood: count it, do not split it
                self._output_dropped += data.count(b"\n")
                pending = data.rsplit(b"\n", 1)[1]
                continue
            pending += data
            *lines, pending = pending.split(b"\n")
            for line in lines:
                self._forward(line)
            if len(pending) > 65536:
                self._forward(pending)
                pending = b""
        if pending:
            self._forward(pending)
        if self._output_dropped:
            self.pool.say(f"worker {self.name}: {self._output_dropped} more lines of output not shown")

    def _budget(self) -> float:
        """Lines that may be passed on now (a bucket of ``_OUTPUT_LINES`` refilled over ``_OUTPUT_WINDOW``)."""
        now = time.monotonic()
        self._output_budget = min(
            _OUTPUT_LINES, self._output_budget + (now - self._output_checked) * _OUTPUT_LINES / _OUTPUT_WINDOW
        )
        self._output_checked = now
        return self._output_budget

    def _forward(self, line: bytes) -> None:
        if self._budget() < 1:
            self._output_dropped += 1
            return
        self._output_budget -= 1
        if self._output_dropped:
            self.pool.say(f"worker {self.name}: {self._output_dropped} lines of output not shown")
            self._output_dropped = 0
        text = self.pool.mask(line.decode("utf-8", "replace").rstrip())  # masked before it is cut
        if len(text) > _OUTPUT_LINE:
            text = f"{text[:_OUTPUT_LINE]}... [{len(text):,} characters]"
        self.pool.say(f"worker {self.name}: {text}")

    # -- supervision ----------------------------------------------------------------------

    def check_health(self, now: float) -> None:
        """Replace the worker if it stopped answering, or it grew too big."""
        if not self.up or self._killing is not None:
            return
        pool = self.pool
        silent = now - self.heard
        if self.importing is not None:  # collecting (at start or a reload): the bound is per file
            path, since = self.importing
            if now - since > pool.import_timeout:
                self.kill(
                    Death(f"importing {path} did not finish within {pool.import_timeout:g}s", "import", None), path
                )
        elif self.state == "ready":
            self._expire_lost_runs()
            held = self.stalled + silent
            # Only a run that started before the loop stopped turning can be holding it. The
            # worker's guard interrupts the holder at its timeout; past that timeout and the
            # grace, the guard cannot (C code keeping the interpreter's lock): replace the
            # worker. Which check holds it, the worker says in its beats, or, when even its
            # beats cannot get out, the stacks faulthandler dumps.
            # The last beat came at most a beat period before the loop stopped turning.
            since = time.time() - held + 2 * BEAT_EVERY
            candidates = [run for run in self.inflight.values() if run.started_at <= since]
            if held <= min((run.timeout for run in candidates), default=GRACE) + GRACE:
                return
            holder = self.holder if self.holder and silent < 2 * BEAT_EVERY else self._probe(now)
            if holder == _PROBING:
                return
            own = [run.timeout for run in self.inflight.values() if run.check_id == holder]
            limit = (own[0] if own else max((run.timeout for run in candidates), default=GRACE)) + GRACE
            if held > limit:
                who = f" by {holder}" if holder else ""
                self.kill(
                    Death(f"stopped answering: its event loop was held{who} for {held:.1f}s", "unresponsive", holder)
                )
                return
        elif silent > pool.import_timeout + GRACE:
            self.kill(Death(f"stopped answering for {silent:.1f}s while collecting", "unresponsive", None))
            return

    def _probe(self, now: float) -> str | None:
        """Ask the stuck worker's ``faulthandler`` for its stacks, and read the check they show
        running (``_PROBING`` while the answer is on its way; probed again every few seconds)."""
        if self._probed is not None:
            when, found = self._probed
            if found != _PROBING and now - when < _PROBE_EVERY:
                return found
            if found == _PROBING and now - when < 0.2:
                return _PROBING
            if found == _PROBING:
                waited = now - when >= _PROBE_WAIT
                dump = self._read_dump(whole=not waited)
                if not dump and not waited:
                    # Not written yet, or only begun: on a loaded machine the stuck process may
                    # not have run since the signal. Wait for it rather than name nobody.
                    return _PROBING
                running = {}  # every run in flight: the stacks, not the clock, say which holds it
                for run in self.inflight.values():
                    info = self.pool.infos.get(run.check_id)
                    if info is not None:
                        running[(str(info.path), info.function_name)] = run.check_id
                found = stacks.holder(dump, running)
                self._probed = (now, found)
                return found
        self._probed = (now, _PROBING)
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGUSR1)
        return _PROBING

    def _read_dump(self, whole: bool = False) -> str:
        """The stacks written so far, then emptied for the next probe; with ``whole``,
        ``""`` (and left in place to be read again) until the dump is complete."""
        if self._dump is None:
            return ""
        self._dump.seek(0)
        text = self._dump.read().decode("utf-8", "replace")
        if whole and not stacks.complete(text):
            return ""
        self._dump.seek(0)
        self._dump.truncate()
        return text

    def _expire_lost_runs(self) -> None:
        """A safety net: a run the worker has not answered long after its timeout, while
        the worker itself answers, is lost (a bug, not the check's doing): say so."""
        wall = time.time()
        lost = [
            run
            for run in self.inflight.values()
            if run.started_at
            and wall - run.started_at > 2 * run.timeout + 3 * GRACE  # its teardowns may take a timeout
        ]
        for run in lost:
            del self.inflight[run.seq]
            if not run.settled:
                death = Death(f"(worker {self.name}) never answered this run; it was given up", "lost")
                run.finish(self.pool._lost(run, self, death))

    def check_memory(self) -> None:
        if not self.up or self.ps is None or self._killing is not None:
            return
        try:
            self.rss = self.ps.memory_info().rss
        except psutil.Error:
            return
        limit = self.pool.memory_limit
        if not limit or self.rss <= limit:
            self._over = None
            return
        # Whoever was running while most of it grew (more than half the limit since it started).
        # Several such runs started since the same sample cannot be told apart: the ones that
        # end while the memory stays high are let off, for up to _MEMORY_WAIT (unless it grows
        # past twice the limit meanwhile); then a single one left is the culprit, and none, or
        # several, name nobody (the deaths that follow narrow it down).
        now = time.monotonic()
        if self._over is None:
            grew = {run.seq for run in self.inflight.values() if self.rss - run.rss_at_start > limit / 2}
            self._over = (now, grew)
        since, grew = self._over
        left = [run for run in self.inflight.values() if run.seq in grew]
        if len(left) > 1 and now - since < _MEMORY_WAIT and self.rss < 2 * limit:
            return
        culprit = left[0].check_id if len(left) == 1 else None
        self.kill(
            Death(
                f"grew to {self.rss / 2**20:.0f} MiB of memory, above the {limit / 2**20:.0f} MiB limit",
                "memory",
                culprit,
            )
        )

    def cpu_seconds(self) -> float:
        if self.ps is None or not self.up:
            return self.cpu_before
        try:
            times = self.ps.cpu_times()
        except psutil.Error:
            return self.cpu_before
        return float(self.cpu_before + times.user + times.system)

    def kill(self, death: Death, importing: str | None = None) -> None:
        """Kill the worker and its process group; ``_wait`` handles the rest."""
        self._killing = death
        if importing is not None:
            self.pool.skip_file(importing, f"importing it did not finish within {self.pool.import_timeout:g}s")
        self._signal_group(signal.SIGKILL)

    def _signal_group(self, signum: int) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signum)

    async def _wait(self, process: asyncio.subprocess.Process) -> None:
        code = await process.wait()
        with contextlib.suppress(Exception):
            self.cpu_before = self.cpu_seconds()
        self._signal_group(signal.SIGKILL)  # what a check started in the group dies with it
        # Its last words (a result, "exiting: check X") may still be in the socket: read them
        # first, in one go (a reader cancelled between its steps would drop the rest of a frame).
        self._draining = True
        reading = self._tasks[0] if self._tasks else None
        if reading is not None and not reading.done():
            await asyncio.wait([reading], timeout=1.0)
        if self._writer is not None:
            self._writer.close()
        for task in self._tasks:
            if task is not asyncio.current_task():
                task.cancel()
        self.state = "down"
        if self._asked_to_stop and self._killing is None:
            self.pool.on_stopped(self)
            return
        death = self._killing or self._death_of(code)
        if self.importing is not None and death.kind in ("exited", "memory") and death.culprit is None:
            # Nothing else explains it (no check said it was ending the process): the file it imported did.
            path = self.importing[0]
            self.pool.skip_file(path, f"importing it ended the worker process ({death.reason})")
            death = Death(f"{death.reason} while importing {path}", "import", None)
        if self._collected is not None and not self._collected.done():
            self._collected.set_result(f"worker {self.name} {death.reason}")
        self.pool.on_death(self, death)

    def _death_of(self, code: int) -> Death:
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = str(-code)
            reason = f"was killed by {name}"
        else:
            reason = f"exited with code {code}"
        if self.last_word is not None:
            who, said = self.last_word
            how = "os.abort()" if said == "abort" else f"os._exit({said})"
            return Death(f"{reason} ({how} in the check)", "exited", who)
        running = [run.check_id for run in self.inflight.values()]
        return Death(reason, "exited", running[0] if len(running) == 1 else None)

    def take_runs(self) -> list[Run]:
        """The runs the worker had, cut short or waiting: the pool decides their fate."""
        runs = [*self.inflight.values(), *self.waiting]
        self.inflight.clear()
        self.waiting.clear()
        return runs


class WorkerPool:
    """The watcher's workers, the files each one runs, and the isolated checks."""

    def __init__(
        self,
        *,
        count: int,
        concurrency: int,
        args: list[str],
        cwd: Path,
        rootdir: Path,
        memory_limit: int,
        import_timeout: float,
        say: Callable[[str], None],
        mask: Callable[[str], str],
        on_blocked: Callable[[str | None, float], None],
        on_teardown: Callable[[Result], None],
        on_collected: Callable[[Collection], None],
    ) -> None:
        self.count = max(1, count)
        #: The most messages in one frame to a worker (``FRAME_SHARE_OF_SLOTS``).
        self.frame_messages = max(1, int(concurrency * FRAME_SHARE_OF_SLOTS))
        self.args = args
        self.cwd = cwd
        #: Where check ids' paths start (the config file's folder).
        self.rootdir = rootdir
        self.memory_limit = memory_limit
        self.import_timeout = import_timeout
        self.say = say
        self.mask = mask
        self._on_blocked = on_blocked
        self._on_teardown = on_teardown
        self._on_collected = on_collected
        self.workers: dict[str, WorkerProcess] = {str(n): WorkerProcess(self, str(n)) for n in range(1, self.count + 1)}
        #: Files not to import, with the reason: their import ended a worker.
        self.skip: dict[str, str] = {}
        #: The config file's table the watcher runs on (``Config.file_values``), given to
        #: every worker started and at every reload; ``None``: workers read the file.
        self.file_values: dict[str, Any] | None = None
        #: Each skipped file's size and time then: a file changed since is imported again at a reload.
        self._skipped_as: dict[str, tuple[int, int] | None] = {}
        #: Which worker runs the checks of each file.
        self.assignment: dict[str, str] = {}
        self.infos: dict[str, CheckInfo] = {}
        #: Isolated checks, and the worker each runs in.
        self.isolated: dict[str, str] = {}
        #: Counts the changes of which worker runs which check (``assign``, ``isolate``).
        self.assignments = 0
        self.blocks: dict[str, collections.deque[float]] = {}
        self.stopping = False
        self.isolation_workers: dict[str, WorkerProcess] = {}
        self._starting = False
        self._start_deaths: list[str] = []
        self._seq = 0
        self._monitor: asyncio.Task[None] | None = None
        self._restarts: set[asyncio.Task[None]] = set()
        self._collection_waiters: list[asyncio.Future[Collection]] = []
        #: The collection the watcher works from.
        self.view: Collection | None = None

    # -- the pool's life ------------------------------------------------------------------

    async def start(self) -> Collection:
        """Start every worker; the first collection to come back is the watcher's view.

        ``UsageError`` if the workers cannot start (a worker's configuration fails, or
        they keep dying before any of them collects)."""
        self._starting = True
        waiter = self._wait_for_collection()
        for worker in self.workers.values():
            await worker.start()
        self._monitor = asyncio.get_running_loop().create_task(self._watch())
        try:
            return await waiter
        finally:
            self._starting = False

    def _wait_for_collection(self) -> asyncio.Future[Collection]:
        future: asyncio.Future[Collection] = asyncio.get_running_loop().create_future()
        self._collection_waiters.append(future)
        return future

    def _fail_start(self, why: str) -> None:
        waiters, self._collection_waiters = self._collection_waiters, []
        for future in waiters:
            if not future.done():
                future.set_exception(UsageError(why))

    def skip_file(self, relpath: str, why: str) -> None:
        """Import ``relpath`` no more: it ended a worker (or never finished importing)."""
        self.skip[relpath] = why
        self._skipped_as[relpath] = _stat(self.rootdir / relpath)

    def _forgive_changed_files(self) -> None:
        """A reload imports again the skipped files that changed since (they may be fixed)."""
        for relpath, seen in list(self._skipped_as.items()):
            if _stat(self.rootdir / relpath) != seen:
                del self._skipped_as[relpath]
                self.skip.pop(relpath, None)

    def on_fatal(self, worker: WorkerProcess, why: str) -> None:
        if self._starting:
            self._fail_start(why)
        else:
            self.say(f"worker {worker.name} cannot start: {why}")

    def on_collected(self, worker: WorkerProcess, collection: Collection | str) -> None:
        """A worker collected: the first answer after a start or a reload is the watcher's
        new view; a later answer that differs (a replaced worker skipped a file whose
        import ended its predecessor) changes the view too."""
        if isinstance(collection, str):
            self.say(f"worker {worker.name}: {collection}")
            return
        waiters, self._collection_waiters = self._collection_waiters, []
        waiting = [future for future in waiters if not future.done()]
        if waiting:
            self.view = collection
            for future in waiting:
                future.set_result(collection)
            return
        # A replaced worker collected on its own: only files newly skipped change the view
        # (files edited on disk wait for SIGHUP, as in the other workers).
        view = self.view
        if view is None:
            return
        known = {error.id for error in view.errors}
        skipped = [error for error in collection.errors if error.id in self.skip and error.id not in known]
        if skipped:
            gone = {error.id for error in skipped}
            checks = [info for info in view.checks if info.relpath not in gone]
            self.view = Collection(checks, [*view.errors, *skipped], view.kept)
            self._on_collected(self.view)

    async def reload(self) -> Collection | str:
        """Every worker collects again; the first answer is the watcher's new view."""
        waiter = self._wait_for_collection()
        ready = [w for w in self.all_workers() if w.up]
        if not ready:
            waiter.cancel()
            return "no worker is running to collect"
        self._forgive_changed_files()
        for worker in ready:
            worker.send(("reload", dict(self.skip), self.file_values))
        answers: list[asyncio.Future[Collection | str]] = [asyncio.ensure_future(w.collected()) for w in ready]
        waiting: list[asyncio.Future[Any]] = [waiter, *answers]
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        for answer in answers:
            if not answer.done():
                answer.cancel()
        if waiter.done():
            return waiter.result()
        # The first answer was a failure (the worker could not collect at all).
        waiter.cancel()
        self._collection_waiters = [f for f in self._collection_waiters if f is not waiter]
        failures = [answer.result() for answer in answers if answer.done() and not answer.cancelled()]
        return next((f for f in failures if isinstance(f, str)), "collecting again failed")

    async def stop(self, timeout: float) -> None:
        """Ask every worker to finish its runs and fixtures; kill what is left at ``timeout``."""
        self.stopping = True
        self.drop_waiting()
        for task in self._restarts:
            task.cancel()
        workers = [w for w in self.all_workers() if w.process is not None and w.process.returncode is None]
        for worker in workers:
            worker._asked_to_stop = True
            worker.send(("stop",))
        waits = [asyncio.ensure_future(w.process.wait()) for w in workers if w.process is not None]
        if waits:
            await asyncio.wait(waits, timeout=timeout)
        for worker in workers:
            if worker.process is not None and worker.process.returncode is None:
                self.say(f"worker {worker.name} did not stop within {timeout:g}s; killing it")
                worker._signal_group(signal.SIGKILL)
        if waits:
            await asyncio.wait(waits, timeout=5)
        if self._monitor is not None:
            self._monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._monitor
        for worker in workers:
            for task in worker._tasks:
                task.cancel()

    def drop_waiting(self) -> None:
        """Stopping: runs still waiting for a worker being replaced will not start."""
        for worker in self.all_workers():
            while worker.waiting:
                worker.waiting.popleft().finish(None)
            waiters, worker.ready_waiters = worker.ready_waiters, []
            for waiter in waiters:
                waiter.cancel()

    def cancel(self) -> None:
        """A second stop signal: cancel the running checks at once."""
        for worker in self.all_workers():
            if worker.up:
                worker.send(("cancel",))

    def kill_all(self) -> None:
        for worker in self.all_workers():
            if worker.process is not None and worker.process.returncode is None:
                worker._signal_group(signal.SIGKILL)

    def all_workers(self) -> list[WorkerProcess]:
        return [*self.workers.values(), *self.isolation_workers.values()]

    # -- assignment -----------------------------------------------------------------------

    def assign(self, checks: Iterable[CheckInfo]) -> None:
        """Give each file's checks to one worker: files keep their worker, new files go
        to the worker with the fewest checks (largest files first)."""
        self.assignments += 1
        self.infos = {info.id: info for info in checks}
        by_file: collections.Counter[str] = collections.Counter(info.relpath for info in self.infos.values())
        load: collections.Counter[str] = collections.Counter({name: 0 for name in self.workers})
        assignment = {path: worker for path, worker in self.assignment.items() if path in by_file}
        for path, worker in assignment.items():
            load[worker] += by_file[path]
        for path, size in sorted(by_file.items(), key=lambda item: (-item[1], item[0])):
            if path not in assignment:
                worker = min(load, key=lambda name: (load[name], int(name)))
                assignment[path] = worker
                load[worker] += size
        self.assignment = assignment

    def worker_for(self, check_id: str) -> WorkerProcess:
        isolated = self.isolated.get(check_id)
        if isolated is not None:
            return self.isolation_workers[isolated]
        info = self.infos.get(check_id)
        relpath = info.relpath if info is not None else check_id.split("::", 1)[0]
        return self.workers[self.assignment.get(relpath, "1")]

    def isolate(self, check_id: str, why: str) -> None:
        """Move ``check_id`` to a worker of its own (past ``MAX_ISOLATED``, the least busy one)."""
        if check_id in self.isolated or check_id not in self.infos:
            return
        if len(self.isolation_workers) < MAX_ISOLATED:
            name = f"{ISOLATED}-{len(self.isolation_workers) + 1}"
            self.isolation_workers[name] = worker = WorkerProcess(self, name)
            self._restart_later(worker, 0.0)
            where = "a worker process of its own"
        else:
            load = collections.Counter(self.isolated.values())
            name = min(self.isolation_workers, key=lambda n: (load[n], n))
            where = f"worker {name}, with other isolated checks"
        self.isolated[check_id] = name
        self.assignments += 1
        self.say(f"{check_id} {why}; from now on it runs in {where}")

    # -- runs -----------------------------------------------------------------------------

    async def ready_for(self, check_id: str) -> None:
        """Wait until the worker that runs ``check_id`` can take a run (``CancelledError``
        if the watcher stops meanwhile)."""
        worker = self.worker_for(check_id)
        if worker.state == "ready":
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        worker.ready_waiters.append(waiter)
        await waiter

    def run(
        self, worker: WorkerProcess, check_id: str, timeout: float, done: Callable[[Run, RunOutcome | None], None]
    ) -> Run:
        """Start a run of ``check_id`` on ``worker`` (``worker_for(check_id)``, which the
        caller looked up already); ``done`` is called with its outcome (``Run``)."""
        self._seq += 1
        run = Run(self._seq, check_id, timeout, done)
        worker.dispatch(run)
        return run

    def on_blocked(self, worker: WorkerProcess, check_id: str | None, seconds: float) -> None:
        self._on_blocked(check_id, seconds)
        if check_id is None or worker.name.startswith(ISOLATED):
            return
        now = time.monotonic()
        times = self.blocks.setdefault(check_id, collections.deque(maxlen=BLOCKS_TO_ISOLATE))
        times.append(now)
        if len(times) == BLOCKS_TO_ISOLATE and now - times[0] <= _BLOCK_WINDOW:
            self.isolate(check_id, f"held the event loop of worker {worker.name} {BLOCKS_TO_ISOLATE} times")

    def on_teardown(self, result: Result) -> None:
        self._on_teardown(result)

    def on_stopped(self, worker: WorkerProcess) -> None:
        for run in worker.take_runs():
            run.finish(None)

    def on_death(self, worker: WorkerProcess, death: Death) -> None:
        """A worker ended unasked: settle its runs, isolate the culprit, start a new one."""
        now = time.monotonic()
        worker.restarts[death.kind] += 1
        runs = worker.take_runs()
        if death.culprit is None and death.kind in ("exited", "memory", "unresponsive"):
            death = dataclasses.replace(death, culprit=self._deduce(worker, [run.check_id for run in runs], now))
        isolated = worker.name.startswith(ISOLATED)
        if death.culprit is not None and not isolated:
            self.isolate(death.culprit, f"made worker {worker.name} end ({death.reason})")
        elif death.kind != "import":  # the cause is still there: restarts that repeat wait longer
            worker.deaths.append(now)
        while worker.deaths and now - worker.deaths[0] > _DEATH_WINDOW:
            worker.deaths.popleft()
        self.say(f"worker {worker.name} {death.reason}; starting a new one")
        if self._starting:
            self._start_deaths.append(death.reason)
            if len(self._start_deaths) >= 3 * len(self.workers) + len(self.skip):
                self._fail_start(f"the worker processes keep ending before they collect: {death.reason}")
                return
        for run in runs:
            if run.settled:
                continue
            if run.check_id == death.culprit or run.retried:
                run.finish(self._lost(run, worker, death))
            else:
                run.retried = True  # cut short through no fault of its own: once more
                self.worker_for(run.check_id).dispatch(run)
        if self.stopping:
            return
        repeats = len(worker.deaths)
        delay = 0.0 if repeats <= 1 else min(2.0 ** (repeats - 2), _MAX_BACKOFF)
        if delay:
            self.say(f"worker {worker.name} ended {repeats} times within {_DEATH_WINDOW:g}s; next start in {delay:g}s")
        self._restart_later(worker, delay)

    def _deduce(self, worker: WorkerProcess, running: list[str], now: float) -> str | None:
        """The check behind deaths that named nobody: the one check running at each of them.

        Each unexplained death narrows the suspects to the checks running at it too;
        once one is left, it is the culprit."""
        present = set(running)
        if not present:
            return None
        suspects, since = worker.suspects
        narrowed = bool(suspects) and now - since <= _DEATH_WINDOW and bool(suspects & present)
        if narrowed:
            suspects = suspects & present
        else:
            suspects, since = present, now
        if len(suspects) == 1 and (narrowed or len(present) == 1):
            worker.suspects = (set(), 0.0)
            return next(iter(suspects))
        worker.suspects = (suspects, since)
        return None

    def _lost(self, run: Run, worker: WorkerProcess, death: Death) -> RunOutcome:
        message = f"the worker process running this check {death.reason}"
        if death.kind != "lost":
            message += "; it was replaced"
        return self.error_outcome(run, worker, message, timed_out=death.kind == "unresponsive")

    def error_outcome(self, run: Run, worker: WorkerProcess, message: str, *, timed_out: bool = False) -> RunOutcome:
        """An ``error`` result for ``run`` that the watcher makes itself (its worker died, or
        sent no readable result), with the check's name, severity and labels."""
        info = self.infos.get(run.check_id)
        started = run.started_at or time.time()
        result = Result(
            id=run.check_id,
            name=info.name if info is not None else run.check_id.rsplit("::", 1)[-1],
            outcome=Outcome.ERROR,
            message=message,
            duration_s=max(time.time() - started, 0.0),
            timed_out=timed_out,
            severity=info.severity if info is not None else "warning",
            labels=info.labels if info is not None else {},
            started_at=started,
        )
        result.extra["worker"] = worker.name
        return result, [], None

    def _restart_later(self, worker: WorkerProcess, delay: float) -> None:
        async def restart() -> None:
            if delay:
                await asyncio.sleep(delay)
            if self.stopping:
                return
            try:
                await worker.start()
            except OSError as exc:
                self.say(f"cannot start worker {worker.name}: {exc}")
                worker.deaths.append(time.monotonic())
                self._restart_later(worker, min(max(delay * 2, 1.0), _MAX_BACKOFF))

        task = asyncio.get_running_loop().create_task(restart())
        self._restarts.add(task)
        task.add_done_callback(self._restarts.discard)

    async def _watch(self) -> None:
        """Every quarter second, look for workers to replace; memory every second."""
        tick = 0
        while True:
            await asyncio.sleep(0.25)
            now = time.monotonic()
            tick += 1
            for worker in self.all_workers():
                worker.check_health(now)
                if tick % 4 == 0:
                    worker.check_memory()
