"""Uptime from the store's hourly rollups: per check, over 24 h / 7 d / 30 d / 90 d and per UTC day.

Uptime is the SLI ``fraiseql-check slo`` reads (``stores.SLITotals``): each counted run
adds its check's interval to the good seconds (passed) or the bad ones (failed,
error); skipped runs, silenced runs, collection errors and teardowns count nothing.
So a check run hourly whose 30 days hold 8 failed hours is up 712/720 = 98.89 %.

Every number of a page comes from one ``sli_totals`` call for all the checks and
all the windows (the four spans and the 90 days of the bar): the store reads each
rollup row once, and the answer is kept for ``CACHE_SECONDS``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fraiseql_checks.stores import SLITotals, Store

DAY = 86400
#: The spans the page shows, by the name ``?window=`` takes.
WINDOWS: dict[str, int] = {"24h": DAY, "7d": 7 * DAY, "30d": 30 * DAY, "90d": 90 * DAY}
#: The days of the bar.
DAYS = 90
#: How old an answer may be before a refresh starts (in the background: pages never wait for it).
CACHE_SECONDS = 15.0


def ratio(totals: SLITotals) -> float | None:
    """The good share of the counted time, ``None`` when nothing counted."""
    counted = totals.good_s + totals.bad_s
    if counted <= 0:
        return None
    return totals.good_s / counted


def percent(value: float | None) -> str:
    """``98.89%``, ``100%``, or ``no data``; never ``100.00%`` for a check that failed."""
    if value is None:
        return "no data"
    if value >= 1.0:
        return "100%"
    shown = round(value * 100, 2)
    if shown >= 100.0:
        shown = 99.99
    return f"{shown:.2f}%"


@dataclasses.dataclass(frozen=True)
class Day:
    """One bar of the 90-day bar: a UTC day and its uptime."""

    start: float
    uptime: float | None
    bad_s: float


@dataclasses.dataclass(frozen=True)
class Uptime:
    """A check's uptime over each of ``WINDOWS`` and per day (oldest first)."""

    windows: dict[str, float | None]
    days: tuple[Day, ...]

    def shown(self, window: str) -> str:
        return percent(self.windows.get(window))


EMPTY = Uptime({name: None for name in WINDOWS}, ())


def day_starts(now: float, days: int = DAYS) -> list[float]:
    """The starts of the last ``days`` UTC days, today's last."""
    today = math.floor(now / DAY) * DAY
    return [float(today - (days - 1 - i) * DAY) for i in range(days)]


def plan(now: float, days: int = DAYS) -> tuple[list[tuple[float, float]], list[float]]:
    """The windows one ``sli_totals`` call asks for: the spans of ``WINDOWS``, then each day."""
    starts = day_starts(now, days)
    spans = [(now - seconds, now) for seconds in WINDOWS.values()]
    return spans + [(start, min(start + DAY, now)) for start in starts], starts


async def uptimes(store: Store, check_ids: Sequence[str], now: float, days: int = DAYS) -> dict[str, Uptime]:
    """The uptime of each check, from one ``sli_totals`` call. Built in a thread: for ten
    thousand checks it is a million small objects, seconds the event loop cannot give."""
    windows, starts = plan(now, days)
    totals = await store.sli_totals(list(check_ids), windows)
    return await asyncio.to_thread(_uptimes_of, check_ids, totals, starts)


def _uptimes_of(
    check_ids: Sequence[str], totals: dict[str, list[SLITotals]], starts: Sequence[float]
) -> dict[str, Uptime]:
    names = list(WINDOWS)
    out: dict[str, Uptime] = {}
    blank: Uptime | None = None  # the checks with nothing counted in any window share one
    for check_id in check_ids:
        found = totals.get(check_id)
        if found is None:
            out[check_id] = EMPTY
            continue
        if all(t.good_s + t.bad_s <= 0 for t in found):
            if blank is None:
                blank = _uptime_of(names, found, starts)
            out[check_id] = blank
            continue
        out[check_id] = _uptime_of(names, found, starts)
    return out


def _uptime_of(names: Sequence[str], found: Sequence[SLITotals], starts: Sequence[float]) -> Uptime:
    spans, per_day = found[: len(names)], found[len(names) :]
    return Uptime(
        {name: ratio(t) for name, t in zip(names, spans, strict=True)},
        tuple(Day(start, ratio(t), t.bad_s) for start, t in zip(starts, per_day, strict=True)),
    )


class UptimeCache:
    """``uptimes`` for the watched checks, at most ``CACHE_SECONDS`` old.

    A page never waits for a refresh once there is an answer: a stale one is served
    while a refresh runs in the background (one at a time); only the first request,
    or one for a new set of checks, waits. ``warm`` starts the first computation
    before anyone asks (at watch start)."""

    def __init__(self, store: Store, ttl: float = CACHE_SECONDS) -> None:
        self.store = store
        self.ttl = ttl
        self._key: tuple[str, ...] = ()
        self._at = -math.inf
        self._value: dict[str, Uptime] = {}
        self._lock = asyncio.Lock()
        self._refresh: asyncio.Task[None] | None = None

    async def get(self, check_ids: Sequence[str]) -> dict[str, Uptime]:
        key = tuple(sorted(check_ids))
        if key == self._key and self._at > -math.inf:
            if time.time() - self._at >= self.ttl:
                self.warm(key)
            return self._value
        await self._compute(key)
        return self._value if key == self._key else await uptimes(self.store, key, time.time())

    def warm(self, check_ids: Sequence[str]) -> None:
        """Compute in the background unless a computation runs already."""
        if self._refresh is None or self._refresh.done():
            self._refresh = asyncio.get_running_loop().create_task(self._quietly(tuple(sorted(check_ids))))

    async def _quietly(self, key: tuple[str, ...]) -> None:
        with contextlib.suppress(Exception):  # the store away: the next page asks again
            await self._compute(key)

    async def _compute(self, key: tuple[str, ...]) -> None:
        async with self._lock:
            if key == self._key and time.time() - self._at < self.ttl:
                return  # another request computed it meanwhile
            now = time.time()
            value = await uptimes(self.store, key, now)
            self._value, self._key, self._at = value, key, now

    def clear(self) -> None:
        self._at = -math.inf
