"""The SQLite store's writer process: in watch mode the store's writes run in a process
of their own, driven from the watcher's event loop, so that neither waits for the other's GIL.

A thread of the watcher that writes to SQLite has to take the GIL back after every call
into SQLite, and beside an event loop that never idles it waited long for it each time:
``watch.py store`` wrote 94–2,000 results/s beside a busy loop against ~50,000/s alone,
and a saturated watcher's scrape and runs shared a core with it (docs/performance.md,
"The SQLite store's writer process"). Here the loop turns the batch into plain rows
and pickles them, ``SLICE`` at a time with a turn of the loop between slices
(``encode_write``), and writes them to a socket; the child writes them in one
transaction, as the store's thread would (``sqlite.write_batch``).

The protocol, one write at a time (``WriterProcess``, the watcher's end):

- ``("write", result_parts, changes, state_parts, outbox)``, the parts each a slice of
  the rows pickled (``batch_from`` puts them together again); before COMMIT the child
  asks ``("commit?",)`` and the watcher
  answers ``("yes",)``, or ``("no",)`` when the store was reset meanwhile (the child
  rolls back: a write given up on never lands);
- then ``("done",)``, or ``("error", kind, message)``: ``unavailable`` (a
  ``StoreUnavailable``: locked, disk full), ``usage`` (a ``UsageError``: a file of a
  newer schema), ``gaveup``.

A reset that gives up on a write not yet committing kills the child (SQLite keeps nothing
of a transaction that did not commit); the writes after it start another. A child that
died between writes is replaced at the next write; one that dies during a write fails
that write (``StoreUnavailable``), which the buffered writer retries: a batch written
twice is stored once. The child dies with the watcher (``PR_SET_PDEATHSIG``, and the end
of its socket), ignores Ctrl-C (the watcher's to handle) and runs no user code. The
store's thread still makes every other call (reads, pruning, silences, the outbox's
updates) on its own connection: WAL lets them read while the child writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar

from fraiseql_checks import frames
from fraiseql_checks.config import UsageError
from fraiseql_checks.stores import StoreUnavailable

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Callable, Sequence

    from fraiseql_checks.outbox import OutboxEntry
    from fraiseql_checks.states import StateChange, StateRecord
    from fraiseql_checks.stores import StoredResult
    from fraiseql_checks.stores.sqlite import Batch

T = TypeVar("T")

#: What the child runs: ``python -c BOOTSTRAP <package parent> <fd> <path> <busy timeout>``
#: (its first line names it in ``ps``).
BOOTSTRAP = (
    "# fraiseql-check: the SQLite store's writer process\n"
    "import sys; sys.path.insert(0, sys.argv[1]); from fraiseql_checks.stores.sqlite_writer import main; main()"
)


#: How long the event loop waits for a killed child to be gone before it leaves it.
_REAP_WAIT = 0.5


class WriterProcess:
    """The watcher's end, driven from its event loop: no thread of the watcher waits for
    the GIL to send a batch or to read the answer. One write at a time, in order; a write
    runs to its end even when its caller stops waiting (as a call on the store's thread).

    ``abandon`` (the store's ``reset``) gives up on it: the write in progress is ended
    (the child killed) unless it is committing, and every later write fails; the store
    makes a new ``WriterProcess`` for the writes after the reset. After ``close`` too,
    every write fails: none starts another child."""

    def __init__(self, path: Path, busy_timeout: float) -> None:
        self.path = path
        self.busy_timeout = busy_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._turn: asyncio.Lock | None = None
        self._stderr: IO[bytes] | None = None
        #: A write asked to commit and was told yes, and has not answered since.
        self._committing = False
        self._abandoned = False
        self._closed = False

    @property
    def pid(self) -> int | None:
        process = self._process
        return None if process is None else process.pid

    async def write(self, frame: bytes) -> None:
        """Write a batch (its frame: ``encode_write``) through the child; raises as the
        store's thread would."""
        if self._turn is None:
            self._turn = asyncio.Lock()
        task = asyncio.ensure_future(self._write(frame, self._turn))
        task.add_done_callback(_retrieve)  # its caller may have stopped waiting (a timeout, a reset)
        await asyncio.shield(task)

    async def _write(self, frame: bytes, turn: asyncio.Lock) -> None:
        async with turn:
            if self._abandoned:
                raise StoreUnavailable("the store's connection was reset: a call got no answer")
            if self._closed:  # a write that came after the close (its rows were still being made)
                raise StoreUnavailable("the store is closed")
            if self._streams is None or self._process is None or self._process.poll() is not None:
                await self._start()  # the first write, or the child died since the last one
            reader, writer = self._streams  # type: ignore[misc]
            try:
                writer.write(frame)
                while True:
                    answer = await _receive(reader)
                    if answer[0] != "commit?":
                        break
                    if self._abandoned:
                        writer.write(frames.encode(("no",)))
                        continue  # its answer is "gaveup"
                    self._committing = True
                    writer.write(frames.encode(("yes",)))
            except (OSError, EOFError, asyncio.IncompleteReadError) as exc:
                raise self._died(exc) from None
            finally:
                self._committing = False
                if self._abandoned:  # a write given up on while it committed ended: so does the child
                    self._reap()
        kind = answer[0]
        if kind == "done":
            return
        if kind == "error":
            _, error, message = answer
            raise _ERRORS.get(error, StoreUnavailable)(message)
        raise StoreUnavailable(f"the store's writer process said {kind!r}")

    async def _start(self) -> None:
        self._reap()
        package_parent = str(Path(__file__).resolve().parent.parent.parent)
        try:
            ours, theirs = socket.socketpair()
        except OSError as exc:  # out of file descriptors
            raise StoreUnavailable(f"cannot start the store's writer process: {exc}") from exc
        # -P: the working directory (the user's checks) is not on its path: no module of theirs
        # shadows one it imports
        command = [sys.executable, "-P", "-c", BOOTSTRAP, package_parent, str(theirs.fileno()), str(self.path)]
        self._stderr = tempfile.TemporaryFile()  # the last words of a child that failed, for its error
        try:
            self._process = subprocess.Popen(
                [*command, repr(self.busy_timeout)],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=self._stderr,
                # not in the watcher's process group: a terminal's Ctrl-C or hang-up, or a
                # service manager's SIGTERM to the group, is the watcher's to act on
                start_new_session=True,
            )
        except OSError as exc:
            ours.close()
            raise StoreUnavailable(f"cannot start the store's writer process: {exc}") from exc
        finally:
            theirs.close()
        self._streams = await asyncio.open_unix_connection(sock=ours)

    def _died(self, error: BaseException) -> StoreUnavailable:
        said = self._last_words()
        code = self._reap()
        if self._abandoned:
            return StoreUnavailable("the store's connection was reset: a call got no answer")
        how = f"exited with code {code}"
        if code is None or code < 0:
            how = f"was killed ({type(error).__name__}: {error})"
            with contextlib.suppress(ValueError, TypeError):
                how = f"was killed by {signal.Signals(-code).name}"  # type: ignore[operator]
        if said:
            how += f" ({said})"
        return StoreUnavailable(f"the store's writer process {how} during a write; it is started again at the next")

    def _last_words(self) -> str:
        """The last line the child wrote to its stderr (a traceback's last line), cut short."""
        stderr = self._stderr
        if stderr is None:
            return ""
        with contextlib.suppress(OSError):
            if self._process is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._process.wait(_REAP_WAIT)  # exiting: let it finish saying why
            stderr.seek(max(0, stderr.seek(0, os.SEEK_END) - 4096))
            lines = stderr.read().decode("utf-8", "replace").strip().splitlines()
            return lines[-1][:300] if lines else ""
        return ""

    def abandon(self) -> bool:
        """Give up on this writer process: whether a write was committing (it may land).
        A write in progress ends the child when it ends; an idle child is ended now."""
        self._abandoned = True
        if self._committing:
            return True
        self.kill()
        if self._turn is None or not self._turn.locked():
            self._reap()
        return False

    def kill(self) -> None:
        """End the child now, whatever it is doing: a write not committed is lost."""
        process = self._process
        if process is not None and process.poll() is None:
            with contextlib.suppress(OSError):
                process.kill()

    def _detach(self) -> subprocess.Popen[bytes] | None:
        """Forget the child: close our end of its socket and its stderr file; the process
        itself, for the caller to collect."""
        process, streams, stderr = self._process, self._streams, self._stderr
        self._process = self._streams = self._stderr = None
        if streams is not None:
            streams[1].close()
        if stderr is not None:
            stderr.close()
        return process

    def _reap(self) -> int | None:
        """Done with this child (it died, or broke its channel): close our end, kill it
        if it is still there and collect it; its exit code (negative: the signal)."""
        self.kill()
        process = self._detach()
        if process is None:
            return None
        code = process.poll()
        if code is None:
            try:
                # dead or idle here, so at once; but never hold the loop for a child stuck
                # in the kernel (a hung disk): subprocess collects it later
                code = process.wait(_REAP_WAIT)
            except subprocess.TimeoutExpired:
                code = None
        return code

    async def close(self, timeout: float) -> None:
        """The child exits once its socket closes, after the write it is in; after
        ``timeout`` seconds it is killed (its write given up on, unless committing)."""
        self._closed = True
        turn = self._turn
        if turn is not None and turn.locked():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._finished(turn), timeout)
            if turn.locked():
                self.abandon()
        process = self._detach()
        if process is not None:
            await asyncio.to_thread(_wait_or_kill, process, timeout)

    @staticmethod
    async def _finished(turn: asyncio.Lock) -> None:
        async with turn:
            pass


def _retrieve(task: asyncio.Future[None]) -> None:
    """The outcome of a write nobody waits for any more is known to the buffered writer
    already (it gave up on it); it is not "never retrieved"."""
    if not task.cancelled():
        task.exception()


def _wait_or_kill(process: subprocess.Popen[bytes], timeout: float) -> None:
    """Wait for the child to exit; kill it after ``timeout`` s; give up on it ``timeout`` s
    later (stuck in the kernel on a hung disk: subprocess collects it when it can)."""
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout)


async def _receive(reader: asyncio.StreamReader) -> tuple[Any, ...]:
    length = frames.length_of(await reader.readexactly(frames.HEADER_SIZE))
    message = frames.decode(await reader.readexactly(length))  # the child runs only our code
    if not isinstance(message, tuple):
        raise EOFError(f"the writer process sent a {type(message).__name__}")
    return message


_ERRORS: dict[str, type[Exception]] = {"unavailable": StoreUnavailable, "usage": UsageError}


class FrameTooLarge(ValueError):
    """A batch too large for one frame (``frames.MAX_FRAME``): the store writes it on its
    thread instead, which has no such bound."""


#: Rows built and pickled on the event loop between two of its turns (``encode_write``).
SLICE = 1000


async def encode_write(
    results: Sequence[StoredResult],
    changes: Sequence[StateChange],
    states: Sequence[StateRecord],
    outbox: Sequence[OutboxEntry],
) -> bytes:
    """The frame of a write (``sqlite.batch_of``'s rows), made on the event loop ``SLICE``
    rows at a time, with a turn of the loop between slices: a saturated watcher's write of
    5,000 results and as many states held its loop 12-23 ms in one go (docs/performance.md).
    Raises ``FrameTooLarge``."""
    from fraiseql_checks.stores.sqlite import change_rows, newest_states, outbox_rows, result_rows, state_rows

    result_parts = await _pickled_slices(results, result_rows)
    state_parts = await _pickled_slices(newest_states(states), state_rows)
    frame = frames.encode(("write", result_parts, change_rows(changes), state_parts, outbox_rows(outbox)))
    if len(frame) - frames.HEADER_SIZE > frames.MAX_FRAME:
        raise FrameTooLarge(f"a batch of {len(frame):,} bytes is more than a frame may hold")
    return frame


async def _pickled_slices(items: Sequence[T], rows_of: Callable[[Sequence[T]], list[tuple[Any, ...]]]) -> list[bytes]:
    """The rows of ``items``, ``SLICE`` at a time, each slice pickled; a turn of the loop after each."""
    parts = []
    for start in range(0, len(items), SLICE):
        parts.append(frames.dumps(rows_of(items[start : start + SLICE])))
        await asyncio.sleep(0)
    return parts


def batch_from(message: tuple[Any, ...]) -> Batch:
    """The batch an ``encode_write`` frame holds (in the child)."""
    _, result_parts, changes, state_parts, outbox = message
    return _unpickled(result_parts), changes, _unpickled(state_parts), outbox


def _unpickled(parts: list[bytes]) -> list[tuple[Any, ...]]:
    return [row for part in parts for row in frames.decode(part)]


# -- the child -------------------------------------------------------------------------


def _die_with_parent() -> None:
    """SIGKILL when the watcher dies (``PR_SET_PDEATHSIG``), even inside a long statement."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the watcher's; it closes us
    parent = os.getppid()
    _die_with_parent()
    if os.getppid() != parent:  # the watcher died before PDEATHSIG was set
        os._exit(1)
    fd, path, busy_timeout = int(sys.argv[2]), Path(sys.argv[3]), float(sys.argv[4])
    channel = frames.BlockingChannel(socket.socket(fileno=fd))
    sys.exit(serve(channel, path, busy_timeout))


def serve(channel: frames.BlockingChannel, path: Path, busy_timeout: float) -> int:
    """Answer writes until the watcher closes the channel."""
    import sqlite3

    from fraiseql_checks.stores.sqlite import SQLiteStore, _GaveUp, write_batch

    store = SQLiteStore(path, busy_timeout=busy_timeout)
    conn: sqlite3.Connection | None = None
    # The policy of watch mode's other long-lived processes (imported here, when the
    # process serves: the stores room does not import watch mode at import time). What
    # is alive now (the modules) lives as long as the process: frozen, out of the full
    # collections that walked it a few times a second in a saturated watcher's writer
    # (~0.4 µs of CPU per stored result); and with Python's thresholds the rows of a
    # batch (tuples, no cycles) made a young collection every 700 of them and a full
    # one about once a second (~0.6 µs per stored result; docs/performance.md).
    from fraiseql_checks.watch import heap

    heap.freeze()

    def ask(conn: sqlite3.Connection) -> None:
        channel.send(("commit?",))
        if channel.receive() != ("yes",):
            raise _GaveUp("the store was reset during the write")
        conn.execute("COMMIT")

    while True:
        try:
            message = channel.receive()
        except (EOFError, OSError, ValueError):  # the watcher is gone, or its frame is unreadable
            break
        if message[0] != "write":
            continue
        try:
            if conn is None:
                conn = store._connect()
            write_batch(conn, batch_from(message), ask)
        except (EOFError, OSError):  # the watcher went away while we asked it
            break
        except _GaveUp as exc:
            channel.send(("error", "gaveup", str(exc)))
        except UsageError as exc:
            channel.send(("error", "usage", str(exc)))
        except StoreUnavailable as exc:
            channel.send(("error", "unavailable", str(exc)))
        except sqlite3.Error as exc:  # disk full, locked for too long, file removed
            channel.send(("error", "unavailable", f"{type(exc).__name__}: {exc}"))
        except Exception as exc:  # a bug of ours: said, not hidden
            channel.send(("error", "unavailable", f"the writer process failed: {type(exc).__name__}: {exc}"))
        else:
            channel.send(("done",))
    if conn is not None:
        conn.close()
    return 0
