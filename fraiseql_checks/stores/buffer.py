"""Results on their way to the store: written in batches, kept in memory while it is away.

Checking never waits for the store. Results and state changes queue in memory and
a background task writes them in batches; when a write fails (the database was
stopped, the disk is full) the batch goes back to the front of the queue and is
retried with a growing pause. The queue is bounded: past ``limit`` items the
oldest are dropped and counted, and nothing is lost while the bound holds.
Check states (``StateRecord``) do not queue: only the newest of each check is
worth writing, so they wait in a table by check (as many as there are checks)
and go with the next batch, in its transaction. The watcher hands over the live
state itself (``add_state``), and its snapshot is taken when the batch is written
(``STATE_SLICE`` at a time, a turn of the event loop between): one per check and
batch, not one per run. Outbox entries do the same, by
id: a new entry goes with the state change that made it (added together, they
are in the same batch), and a delivery's new status replaces a pending one.

A store call that gets no answer within ``write_timeout`` (a lock held by someone
else, a dead TCP peer, a hung disk) is given up on: the store is reported down,
its connections are dropped (``Store.reset``), the batch goes back to the front
of the queue and is retried like any failed write. Writes are idempotent, so a
batch that landed after all is stored once.

``stop`` never cancels a write blindly: the write in progress may finish, what is
queued is written, until the deadline; then ``WriterTotals`` says exactly what
was stored, dropped and not written, and whether a write given up on at the
deadline may have been stored anyway. Old rows are pruned here too, past the
retention, and the SLO rollups past their own, longer retention.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from fraiseql_checks.durations import format_duration
from fraiseql_checks.outbox import OutboxEntry
from fraiseql_checks.stores import StateChange, StateRecord, Store, StoredResult, StoreUnavailable

__all__ = ["BufferedWriter", "Item", "WriterTotals"]

T = TypeVar("T")
Item = StoredResult | StateChange | StateRecord | OutboxEntry


class LiveState(Protocol):
    """A check's state as it changes (``watch.state.CheckState``)."""

    def snapshot(self) -> StateRecord: ...


#: How long a write (or opening, reading the states, pruning) may go without an
#: answer before it is given up on. A healthy batch takes well under a second, and
#: the ordinary waits end sooner on their own bounds, as errors that say what
#: happened (SQLite's busy timeout, 5 s; PostgreSQL's command timeout, 10 s): past
#: 30 s the store is not slow but stuck. Short enough that ``/readyz`` and
#: ``fraiseql_check_store_up`` say so well within an alert's usual ``for: 1m``.
WRITE_TIMEOUT = 30.0
#: How long a write given up on may take to unwind once its connection is gone.
_UNWIND = 0.5
#: Live states snapshotted for a write between two turns of the event loop.
STATE_SLICE = 500
#: A write every ``EVERY`` seconds, of at most ``BATCH`` results and state changes;
#: sooner when that many are queued (or half the buffer, when it is smaller), when an
#: outbox entry is (a notification waits for its entry to be stored), or when the
#: watcher hands checks over (their new owner reads their states). A write's cost is
#: mostly per page of the store it touches, and the results of each check go to pages
#: of their own: a saturated watcher of 1,000 checks touched as many pages with writes
#: every 0.25 s as it does now once a second. Its SQLite writer process went from 13.0
#: to 7.2 µs of CPU per run (docs/performance.md).
EVERY = 1.0
BATCH = 20_000


@dataclasses.dataclass(frozen=True)
class WriterTotals:
    """What became of the items given to a writer: results, state changes and check
    states alike (a check's state replaced by a newer one before it was written
    counts nowhere: only the newest matters)."""

    #: Stored: the store confirmed the write.
    written: int
    #: Dropped, oldest first, because the queue was full while the store was away.
    dropped: int
    #: Still in memory: never written, or in a write given up on.
    not_written: int
    #: Of ``not_written``: the items of a write given up on after it had asked the
    #: store to commit, which the store may have kept after all (at most one batch).
    in_doubt: int = 0

    def __str__(self) -> str:
        text = f"{self.written} stored, {self.dropped} dropped, {self.not_written} not written"
        if self.in_doubt:
            text += f" ({self.in_doubt} of them may have been stored: the store never confirmed their commit)"
        return text


class _Write:
    """One batch on its way to the store."""

    __slots__ = ("doubt", "giving_up", "outbox", "queued", "started", "states", "stored", "task")

    def __init__(
        self,
        queued: list[StoredResult | StateChange],
        states: dict[str, StateRecord | LiveState],
        outbox: dict[str, OutboxEntry],
        task: asyncio.Future[None],
    ) -> None:
        self.queued = queued
        self.states = states
        self.outbox = outbox
        self.task = task
        self.started = time.monotonic()
        #: Settled: whether it was stored (``None`` until then).
        self.stored: bool | None = None
        #: Giving up on it, once begun, runs to its end even if the waiter that began it is
        #: cancelled: the batch must go back to the queue.
        self.giving_up: asyncio.Task[bool] | None = None
        #: The store was reset while this write was committing: it may have landed.
        self.doubt = False

    @property
    def count(self) -> int:
        return len(self.queued) + len(self.states) + len(self.outbox)


class BufferedWriter:
    """The queue in front of a ``Store``; ``run()`` is its writing task, ``stop()`` ends it."""

    def __init__(
        self,
        store: Store,
        limit: int,
        *,
        batch: int = BATCH,
        every: float = EVERY,
        retention: float | None = None,
        rollup_retention: float | None = None,
        write_timeout: float = WRITE_TIMEOUT,
        warn: Callable[[str], None] = lambda message: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.limit = limit
        self.batch = batch
        self.every = every
        #: A write starts at once when this many wait: a batch's worth, or half the buffer
        #: when the buffer is smaller (a store that keeps up never has results dropped).
        self._write_at = max(1, min(batch, limit // 2))
        self.retention = retention
        self.rollup_retention = rollup_retention
        self.write_timeout = write_timeout
        self._warn = warn
        self._clock = clock
        self._queue: collections.deque[StoredResult | StateChange] = collections.deque()
        #: The newest state of each check not yet sent (a live one: its snapshot when sent).
        self._states: dict[str, StateRecord | LiveState] = {}
        #: The newest version of each outbox entry not yet sent.
        self._outbox: dict[str, OutboxEntry] = {}
        self._current: _Write | None = None
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        #: Items dropped because the queue was full while the store was away.
        self.dropped = 0
        self.written = 0
        self.errors = 0
        #: The last write (or the opening) succeeded.
        self.up = False
        self.last_error = ""
        self._pause = 0.0
        self._next_prune = 0.0
        # What may have been stored by a write given up on mid-commit: the first items
        # of the queue (it went back to the front) and some of the pending states.
        self._doubtful_queued = 0
        self._doubtful_states: set[str] = set()

    @property
    def backlog(self) -> int:
        """Items not yet in the store (queued, pending states, or being written)."""
        current = self._current
        return len(self._queue) + len(self._states) + len(self._outbox) + (current.count if current is not None else 0)

    def unwritten_outbox(self) -> set[str]:
        """The ids of outbox entries whose latest version is not in the store yet."""
        current = self._current
        ids = set(self._outbox)
        if current is not None and current.stored is not True:
            ids.update(current.outbox)
        return ids

    @property
    def writing(self) -> bool:
        """A batch is on its way to the store now."""
        return self._current is not None

    def totals(self) -> WriterTotals:
        """The counts so far; after ``stop``, what became of everything."""
        return WriterTotals(
            written=self.written,
            dropped=self.dropped,
            not_written=self.backlog,
            in_doubt=self._doubtful_queued + len(self._doubtful_states),
        )

    def add(self, item: Item) -> None:
        """Queue a result or a state change, or replace the check's pending state."""
        if isinstance(item, StateRecord):
            self._states[item.check_id] = item
            self._doubtful_states.discard(item.check_id)
            return
        if isinstance(item, OutboxEntry):
            self._outbox[item.id] = item
            self.write_soon()  # sent only once stored: not a second later
            return
        queue = self._queue
        if len(queue) >= self.limit:
            self._drop_oldest()
        queue.append(item)
        if len(queue) >= self._write_at:
            self.write_soon()

    def write_soon(self) -> None:
        """Write what waits now rather than at the next ``every`` (after the write under way)."""
        self._wake.set()

    def add_state(self, check_id: str, state: LiveState) -> None:
        """The check's state changed: its snapshot goes with the next batch, taken then."""
        self._states[check_id] = state
        self._doubtful_states.discard(check_id)

    def _drop_oldest(self) -> None:
        self._queue.popleft()
        self.dropped += 1
        if self._doubtful_queued:
            self._doubtful_queued -= 1

    # -- calls to the store, each bounded by write_timeout -------------------------------

    async def _ask(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """A store call other than a write; ``StoreUnavailable`` if it gets no answer
        within ``write_timeout`` (the store is reset: the call is given up on)."""
        task: asyncio.Future[T] = asyncio.ensure_future(call())
        try:
            await asyncio.wait({task}, timeout=self.write_timeout)
        except asyncio.CancelledError:
            task.cancel()  # nothing to lose: it writes no data
            raise
        if task.done():
            return task.result()
        try:
            await self._reset()
        finally:
            task.cancel()
            task.add_done_callback(_retrieve)
        raise StoreUnavailable(f"no answer to {what} within {format_duration(self.write_timeout)}")

    async def _reset(self) -> bool:
        """Drop the store's connections; whether a write then committing may have landed."""
        try:
            doubt = bool(await asyncio.wait_for(self.store.reset(), self.write_timeout))
        except Exception:  # a reset that fails or hangs: assume the worst
            doubt = True
        current = self._current
        if doubt and current is not None:
            current.doubt = True
        return doubt

    async def open(self) -> None:
        """Open the store; a store that is away is retried by ``run``, not fatal."""
        try:
            await self._ask("opening the store", self.store.open)
        except StoreUnavailable as exc:
            self._failed(exc)
        else:
            self.up = True

    async def load_states(self) -> dict[str, StateRecord] | None:
        """The check states the store kept, by check id (after ``open``); ``None`` when
        it cannot say now (it is away, or gave no answer within ``write_timeout``)."""
        try:
            return await self._ask("reading the check states", self.store.load_states)
        except StoreUnavailable as exc:
            self._failed(exc)
            return None

    def _failed(self, exc: Exception) -> None:
        self.errors += 1
        text = str(exc) if isinstance(exc, StoreUnavailable) else f"{type(exc).__name__}: {exc}"
        if self.up or not self.last_error:
            self._warn(f"result store {self.store.url} is unavailable ({text}); keeping results in memory")
        self.up = False
        self.last_error = text
        self._pause = min(max(self._pause * 2, 0.2), 5.0)

    # -- writing -------------------------------------------------------------------------

    def _start(self) -> _Write | None:
        """Take the next batch and start writing it; ``None`` when there is nothing to write."""
        queue = self._queue
        count = min(len(queue), self.batch)
        if not count and not self._states and not self._outbox:
            return None
        queued = [queue.popleft() for _ in range(count)]
        states, self._states = self._states, {}
        outbox, self._outbox = self._outbox, {}
        results = [item for item in queued if isinstance(item, StoredResult)]
        changes = [item for item in queued if isinstance(item, StateChange)]
        task = asyncio.ensure_future(self._write(results, changes, list(states.values()), list(outbox.values())))
        self._current = write = _Write(queued, states, outbox, task)
        return write

    async def _write(
        self,
        results: list[StoredResult],
        changes: list[StateChange],
        states: list[StateRecord | LiveState],
        outbox: list[OutboxEntry],
    ) -> None:
        """The store's write of a batch, the live states' snapshots taken first, ``STATE_SLICE``
        at a time with a turn of the loop between: 10,000 of them in one go would hold it
        for tens of milliseconds."""
        records = []
        for count, state in enumerate(states, 1):
            records.append(state if isinstance(state, StateRecord) else state.snapshot())
            if count % STATE_SLICE == 0:
                await asyncio.sleep(0)
        await self.store.write(results, changes, records, outbox)

    async def _finish(self, until: float | None = None) -> bool:
        """See the write in progress through: wait until it ends, gets no answer for
        ``write_timeout``, or ``until`` (a ``time.monotonic()``) comes; whether it was stored."""
        write = self._current
        assert write is not None
        if write.stored is None and write.giving_up is None:
            limit = write.started + self.write_timeout
            if until is not None:
                limit = min(limit, until)
            await asyncio.wait({write.task}, timeout=max(limit - time.monotonic(), 0.0))
        if write.stored is not None:  # settled meanwhile, by another waiter
            return write.stored
        if write.giving_up is None:
            if write.task.done():
                return self._settle(write)
            if time.monotonic() >= write.started + self.write_timeout:
                reason = f"no answer to a write within {format_duration(self.write_timeout)}"
            else:
                reason = "a write was given up on at the deadline, still without an answer"
            write.giving_up = asyncio.ensure_future(self._give_up(write, reason))
        return await asyncio.shield(write.giving_up)

    def _settle(self, write: _Write) -> bool:
        """Account for a write that ended."""
        if self._current is write:
            self._current = None
        task = write.task
        error: BaseException | None = StoreUnavailable("the write was cancelled") if task.cancelled() else None
        if error is None:
            error = task.exception()
        if error is None:
            write.stored = True
            self.written += write.count
            self._doubtful_queued = 0  # they were at the front of the queue: in this batch
            self._doubtful_states.clear()  # every pending state was in this batch
            if not self.up:
                self._warn(f"result store {self.store.url} is back; {self.backlog} queued results to write")
            self.up = True
            self._pause = 0.0
            return True
        write.stored = False
        self._requeue(write)
        # Not only StoreUnavailable: a writer that died of an unexpected error would keep
        # everything in memory without a word; this one says so and retries.
        self._failed(error if isinstance(error, Exception) else StoreUnavailable(repr(error)))
        return False

    async def _give_up(self, write: _Write, reason: str) -> bool:
        """Give up on a write that gets no answer: reset the store, put the batch back."""
        await self._reset()
        write.task.cancel()
        await asyncio.wait({write.task}, timeout=_UNWIND)
        if write.task.done() and not write.task.cancelled() and write.task.exception() is None:
            return self._settle(write)  # it made it after all, just in time
        write.task.add_done_callback(_retrieve)
        if self._current is write:
            self._current = None
        write.stored = False
        self._requeue(write)
        self._failed(StoreUnavailable(reason))
        return False

    def _requeue(self, write: _Write) -> None:
        """Put a batch that was not stored back in front; a state newer than its own stays."""
        queue = self._queue
        queue.extendleft(reversed(write.queued))
        restored = [check for check, record in write.states.items() if self._states.setdefault(check, record) is record]
        for entry_id, entry in write.outbox.items():
            self._outbox.setdefault(entry_id, entry)  # a newer version of it stays
        if write.doubt:
            self._doubtful_queued = max(self._doubtful_queued, len(write.queued))
            self._doubtful_states.update(restored)
        while len(queue) > self.limit:
            self._drop_oldest()

    async def write_once(self) -> bool:
        """Write one batch, or see the one in progress through; ``False`` if the store
        refused it or gave no answer within ``write_timeout`` (the batch stays queued)."""
        if self._current is None and self._start() is None:
            return True
        return await self._finish()

    async def _prune(self) -> None:
        now = self._clock()
        if self.retention is None or now < self._next_prune:
            return
        self._next_prune = now + min(self.retention / 10, 3600.0)
        rollups_before = None if self.rollup_retention is None else now - self.rollup_retention
        before = now - self.retention
        try:
            await self._ask("pruning", lambda: self.store.prune(before, rollups_before=rollups_before))
        except StoreUnavailable as exc:
            self._next_prune = now + 60.0
            self._failed(exc)

    async def _idle(self) -> None:
        """Wait for the next batch: a pause after a failure, else ``every`` or a full batch."""
        if self._pause:
            await _wait(self._stopping, self._pause)
        else:
            await _wait(self._wake, self.every)
        self._wake.clear()

    async def run(self) -> None:
        """Write batches until ``stop``. Cancelling it instead does not cancel a write
        in progress: ``stop`` or ``flush`` sees that write through."""
        while not self._stopping.is_set():
            await self._idle()
            if self._stopping.is_set():
                break
            if await self.write_once() and not self._stopping.is_set():
                await self._prune()

    async def flush(self, timeout: float) -> int:
        """Write everything queued, the write in progress first, for at most ``timeout``
        seconds; how many items are left. A write still without an answer at the
        deadline is given up on, and its items are among those left."""
        deadline = time.monotonic() + timeout
        while self._current is not None or self._queue or self._states or self._outbox:
            if self._current is None:
                if time.monotonic() >= deadline:
                    break
                self._start()
            if not await self._finish(deadline):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                await asyncio.sleep(min(self._pause, remaining))
        return self.backlog

    async def stop(self, timeout: float) -> WriterTotals:
        """Stop writing: ``run`` takes no new batch, the write in progress may finish,
        and what is queued is written, for at most ``timeout`` seconds in all; then
        what became of everything. The store stays open (``Store.close`` is the
        caller's, after whatever else reads it)."""
        self._stopping.set()
        self._wake.set()
        await self.flush(timeout)
        return self.totals()


async def _wait(event: asyncio.Event, timeout: float) -> None:
    try:
        await asyncio.wait_for(event.wait(), timeout)
    except TimeoutError:
        pass


def _retrieve(task: asyncio.Future[Any]) -> None:
    """Consume the outcome of a call given up on: it says nothing the writer did not."""
    if not task.cancelled():
        task.exception()
