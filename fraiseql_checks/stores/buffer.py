"""Results on their way to the store: written in batches, kept in memory while it is away.

Checking never waits for the store. Results and state changes queue in memory and
a background task writes them in batches; when a write fails (the database was
stopped, the disk is full) the batch goes back to the front of the queue and is
retried with a growing pause. The queue is bounded: past ``limit`` items the
oldest are dropped and counted, and nothing is lost while the bound holds.
Old rows are pruned here too, past the retention, and the SLO rollups past their
own, longer retention.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable

from fraiseql_checks.stores import Store, StoredResult, StoreUnavailable
from fraiseql_checks.watch.state import StateChange

Item = StoredResult | StateChange


class BufferedWriter:
    """The queue in front of a ``Store``; ``run()`` is its writing task."""

    def __init__(
        self,
        store: Store,
        limit: int,
        *,
        batch: int = 5000,
        every: float = 0.25,
        retention: float | None = None,
        rollup_retention: float | None = None,
        warn: Callable[[str], None] = lambda message: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.limit = limit
        self.batch = batch
        self.every = every
        self.retention = retention
        self.rollup_retention = rollup_retention
        self._warn = warn
        self._clock = clock
        self._queue: collections.deque[Item] = collections.deque()
        self._inflight: list[Item] = []
        self._wake = asyncio.Event()
        #: Items dropped because the queue was full while the store was away.
        self.dropped = 0
        self.written = 0
        self.errors = 0
        #: The last write (or the opening) succeeded.
        self.up = False
        self.last_error = ""
        self._pause = 0.0
        self._next_prune = 0.0

    @property
    def backlog(self) -> int:
        """Items not yet in the store (queued or being written)."""
        return len(self._queue) + len(self._inflight)

    def add(self, item: Item) -> None:
        queue = self._queue
        if len(queue) >= self.limit:
            queue.popleft()
            self.dropped += 1
        queue.append(item)
        if len(queue) >= self.batch:
            self._wake.set()

    async def open(self) -> None:
        """Open the store; a store that is away is retried by ``run``, not fatal."""
        try:
            await self.store.open()
        except StoreUnavailable as exc:
            self._failed(exc)
        else:
            self.up = True

    def _failed(self, exc: StoreUnavailable) -> None:
        self.errors += 1
        if self.up or not self.last_error:
            self._warn(f"result store {self.store.url} is unavailable ({exc}); keeping results in memory")
        self.up = False
        self.last_error = str(exc)
        self._pause = min(max(self._pause * 2, 0.2), 5.0)

    async def write_once(self) -> bool:
        """Write one batch; ``False`` if the store refused it (the batch stays queued)."""
        queue = self._queue
        count = min(len(queue), self.batch)
        if not count:
            return True
        self._inflight = [queue.popleft() for _ in range(count)]
        results = [item for item in self._inflight if isinstance(item, StoredResult)]
        changes = [item for item in self._inflight if isinstance(item, StateChange)]
        try:
            await self.store.write(results, changes)
        except StoreUnavailable as exc:
            queue.extendleft(reversed(self._inflight))
            self._inflight = []
            while len(queue) > self.limit:
                queue.popleft()
                self.dropped += 1
            self._failed(exc)
            return False
        self._inflight = []
        self.written += count
        if not self.up:
            self._warn(f"result store {self.store.url} is back; {len(queue)} queued results to write")
        self.up = True
        self._pause = 0.0
        return True

    async def _prune(self) -> None:
        now = self._clock()
        if self.retention is None or now < self._next_prune:
            return
        self._next_prune = now + min(self.retention / 10, 3600.0)
        rollups_before = None if self.rollup_retention is None else now - self.rollup_retention
        try:
            await self.store.prune(now - self.retention, rollups_before=rollups_before)
        except StoreUnavailable as exc:
            self._next_prune = now + 60.0
            self._failed(exc)

    async def run(self) -> None:
        """Write batches until cancelled."""
        while True:
            if self._pause:
                await asyncio.sleep(self._pause)
            else:
                try:
                    await asyncio.wait_for(self._wake.wait(), self.every)
                except TimeoutError:
                    pass
            self._wake.clear()
            if await self.write_once():
                await self._prune()

    async def flush(self, timeout: float) -> int:
        """Write everything queued, for at most ``timeout`` seconds; how many items are left."""
        deadline = time.monotonic() + timeout
        while self._queue:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                ok = await asyncio.wait_for(self.write_once(), remaining)
            except TimeoutError:
                self._queue.extendleft(reversed(self._inflight))
                self._inflight = []
                break
            if not ok:
                await asyncio.sleep(min(self._pause, max(deadline - time.monotonic(), 0)))
        return self.backlog
