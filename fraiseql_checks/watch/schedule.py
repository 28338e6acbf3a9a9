"""When each check runs next: a heap of due times, first runs spread with jitter.

Pure bookkeeping with no clock of its own: the watcher passes ``now``, tests pass
any number. Runs keep a fixed rate (due, due + interval, ...), so a check's phase
does not drift with its durations; a slot that comes while the previous run is
still going is skipped and counted, and slots missed while the process was
stalled are not made up in a burst, only counted (not before a check's first run:
those are the watcher's start).
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class Entry(Generic[T]):
    """One scheduled check: its interval, next due time and whether it is running."""

    __slots__ = ("_token", "due", "fresh", "interval", "item", "key", "overlaps", "running", "shift", "waiting")

    def __init__(self, key: str, item: T, interval: float, due: float) -> None:
        self.key = key
        self.item = item
        self.interval = interval
        self.due = due
        self.running = False
        #: Its run is due but waits for a concurrency slot (the caller says so).
        self.waiting = False
        #: Slots skipped because the previous run was still going.
        self.overlaps = 0
        #: Added once to the interval after the next run: the phase of a check that ran at once.
        self.shift = 0.0
        #: Not yet come due: the slots before its first one are not missed (a watcher's start).
        self.fresh = True
        self._token = 0


class Schedule(Generic[T]):
    """Due times of many entries; ``pop_due(now)`` gives the entries to start now."""

    def __init__(self, spread: float, rng: random.Random | None = None) -> None:
        self.spread = spread
        self._rng = rng or random.Random()
        #: (due, token): plain numbers, so the garbage collector stops tracking them at its
        #: first look. With the entry in them (10,000 made anew each second on a saturated
        #: watcher, each living an interval) they were most of what every collection of the
        #: older generations went through (docs/performance.md).
        self._heap: list[tuple[float, int]] = []
        #: The entry of each token still live in the heap (an entry's newest; none once removed).
        self._live: dict[int, Entry[T]] = {}
        self._entries: dict[str, Entry[T]] = {}
        self._seq = 0
        #: Counts the entries added and removed (what was derived from the set of keys is stale).
        self.version = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[Entry[T]]:
        return iter(self._entries.values())

    def get(self, key: str) -> Entry[T] | None:
        return self._entries.get(key)

    def add(self, key: str, item: T, interval: float, now: float, *, at_once: bool = False) -> Entry[T]:
        """Schedule a new entry; its first run comes at a random point within
        ``min(interval, spread)`` from ``now``, so entries added together do not fire together
        (``at_once``: at ``now``, for a check taken over from another watcher; the run after
        it comes that random point later than one interval, so checks taken over together
        do not stay together)."""
        phase = self._rng.random() * min(interval, self.spread)
        entry = Entry(key, item, interval, now if at_once else now + phase)
        if at_once:
            entry.shift = phase
        self._entries[key] = entry
        self.version += 1
        self._push(entry)
        return entry

    def update(self, key: str, item: T, interval: float, now: float) -> Entry[T]:
        """Replace an entry's item (a reloaded check), keeping its phase unless the interval changed."""
        entry = self._entries[key]
        entry.item = item
        if interval != entry.interval:
            entry.interval = interval
            entry.due = min(entry.due, now + interval)
            self._push(entry)
        return entry

    def remove(self, key: str) -> Entry[T] | None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self.version += 1
            self._live.pop(entry._token, None)  # its heap tuples are stale from now on
            entry._token = -1
        return entry

    def _push(self, entry: Entry[T]) -> None:
        self._seq += 1
        self._live.pop(entry._token, None)  # the tuple pushed before is stale from now on
        entry._token = self._seq
        self._live[self._seq] = entry
        heapq.heappush(self._heap, (entry.due, self._seq))

    def next_due(self) -> float | None:
        """The earliest due time, or ``None`` when nothing is scheduled."""
        heap, live = self._heap, self._live
        while heap and heap[0][1] not in live:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def pop_due(self, now: float) -> Iterator[tuple[Entry[T], float, int]]:
        """Entries due at ``now`` with the time each was due and the slots after it that
        passed too (``missed``: 0 unless the caller was a whole interval late; always 0 at an
        entry's first slot), rescheduled for their next slot.

        The caller starts each one, or counts an overlap when it is still running; the
        missed slots are not made up, only counted by the caller.
        """
        heap, live = self._heap, self._live
        while heap:
            due, token = heap[0]
            entry = live.get(token)
            if entry is None:
                heapq.heappop(heap)
                continue
            if due > now:
                return
            del live[token]
            entry.due = due + entry.interval
            if entry.shift:
                entry.due += entry.shift
                entry.shift = 0.0
            missed = 0
            if entry.due <= now:  # stalled for a whole interval or more: no burst to catch up, and
                # the phase is kept (the next slot of its own after now), or the checks a stall
                # delayed would all come due together from then on, a burst every interval
                missed = int((now - entry.due) // entry.interval) + 1
                entry.due += missed * entry.interval
                while entry.due <= now:  # the division's rounding: never due again in this call
                    entry.due += entry.interval
                    missed += 1
                if entry.fresh:  # its first slot, late: the watcher was starting, nothing was missed
                    missed = 0
            entry.fresh = False
            self._seq += 1
            entry._token = self._seq
            live[self._seq] = entry
            heapq.heapreplace(heap, (entry.due, self._seq))  # one sift, not a pop and a push
            yield entry, due, missed
