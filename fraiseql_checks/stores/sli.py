"""The SLI arithmetic both SQL stores share: daily and hourly rollup buckets, and the
plan that answers ``sli_totals`` for several windows reading each row once."""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Iterable, Sequence
from typing import Any

from fraiseql_checks.stores import SLITotals

#: The totals of a window in which nothing counted (shared: it is immutable).
NOTHING = SLITotals()
#: The width of an hourly rollup bucket, in seconds.
HOUR = 3600
#: The width of a daily rollup bucket (a UTC day), in seconds.
DAY = 86400
#: Whether ``sli_totals`` reads whole UTC days from the daily rollups. ``False`` reads
#: them hour by hour, as before there were daily rollups: the same numbers, more rows
#: (benchmarks and tests compare the two paths).
DAILY_ROLLUPS = True


def hour_of(at: float) -> int:
    """The start of the UTC hour ``at`` falls in: the rollup bucket of a run started then.

    Exact at the boundaries (``at / 3600`` may round up to the next hour just below it),
    as the stores' SQL computes it."""
    hour = math.floor(at / HOUR) * HOUR
    if hour > at:
        hour -= HOUR
    elif hour + HOUR <= at:
        hour += HOUR
    return hour


def day_of(at: float) -> int:
    """The start of the UTC day ``at`` falls in: the daily bucket of its hour (exact too)."""
    return hour_of(at) // DAY * DAY


@dataclasses.dataclass(frozen=True)
class SLIPlan:
    """How a store answers ``sli_totals`` for a set of windows.

    Each window is cut into the whole UTC days inside it (from the daily rollups), the
    whole hours of its partial days (from the hourly rollups) and the partial hours at
    its edges (from the raw results). These are cut into disjoint segments, so each
    rollup row and each raw result is read once however many windows share it (the
    30-day window contains the 3-day one): the store sums each segment per check,
    ``totals`` adds the segments of each window.
    """

    #: Disjoint ``[since, until)`` ranges of hourly rollup buckets (hour starts).
    hours: tuple[tuple[int, int], ...]
    #: Disjoint ``[since, until)`` ranges of raw results.
    raw: tuple[tuple[float, float], ...]
    #: For each window, the indexes of its segments in ``hours`` and in ``raw``.
    windows: tuple[tuple[tuple[int, ...], tuple[int, ...]], ...]
    #: Disjoint ``[since, until)`` ranges of daily rollup buckets (day starts).
    days: tuple[tuple[int, int], ...] = ()
    #: For each window, the indexes of its segments in ``days``.
    day_windows: tuple[tuple[int, ...], ...] = ()

    def totals(
        self,
        check_ids: Iterable[str],
        hour_sums: Iterable[Sequence[Any]],
        raw_sums: Iterable[Sequence[Any]],
        day_sums: Iterable[Sequence[Any]] = (),
    ) -> dict[str, list[SLITotals]]:
        """Add up per window the segment sums the store found, rows of
        ``(segment index, check id, good_s, bad_s, good_runs, bad_runs)``.

        Pure Python over every row: a store calls it off the event loop
        (``totals_off_loop``). A check with no row (or a window with nothing counted)
        shares one ``NOTHING``: ten thousand new checks cost no object each."""
        count = len(self.windows)
        wanted = list(dict.fromkeys(check_ids))
        members = set(wanted)
        sums: dict[str, list[list[float]]] = {}
        day_parts = self.day_windows or ((),) * count
        parts_of = (
            [parts[0] for parts in self.windows],
            [parts[1] for parts in self.windows],
            list(day_parts),
        )
        for parts, rows in zip(parts_of, (hour_sums, raw_sums, day_sums), strict=True):
            # which windows each segment belongs to
            windows_of: dict[int, list[int]] = {}
            for window, segments in enumerate(parts):
                for segment in segments:
                    windows_of.setdefault(segment, []).append(window)
            for segment, check_id, good_s, bad_s, good_runs, bad_runs in rows:
                if check_id not in members:
                    continue
                per_window = sums.get(check_id)
                if per_window is None:
                    per_window = sums[check_id] = [[0.0, 0.0, 0.0, 0.0] for _ in range(count)]
                for window in windows_of.get(segment, ()):
                    total = per_window[window]
                    total[0] += good_s or 0.0
                    total[1] += bad_s or 0.0
                    total[2] += good_runs or 0
                    total[3] += bad_runs or 0
        nothing = [NOTHING] * count
        out: dict[str, list[SLITotals]] = {}
        for check_id in wanted:
            per_window = sums.get(check_id)
            out[check_id] = (
                nothing.copy()
                if per_window is None
                else [
                    SLITotals(float(g), float(b), int(gr), int(br)) if g or b or gr or br else NOTHING
                    for g, b, gr, br in per_window
                ]
            )
        return out


async def totals_off_loop(
    plan: SLIPlan,
    check_ids: Sequence[str],
    hour_sums: Sequence[Sequence[Any]],
    raw_sums: Sequence[Sequence[Any]],
    day_sums: Sequence[Sequence[Any]] = (),
) -> dict[str, list[SLITotals]]:
    """``plan.totals`` in a thread: for ten thousand checks over the 94 windows of a status
    page it is seconds of work, which on the event loop would stop the watcher's schedule."""
    import asyncio

    return await asyncio.to_thread(plan.totals, check_ids, hour_sums, raw_sums, day_sums)


def _split(since: float, until: float, width: int) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """``[since, until)`` as the whole buckets of ``width`` seconds inside it (one range,
    or none) and the parts at its edges outside them."""
    first = hour_of(since) if width == HOUR else day_of(since)
    if first < since:
        first += width
    last = hour_of(until) if width == HOUR else day_of(until)
    if since >= until:
        return [], []
    if first < last:
        return [(first, last)], [r for r in ((since, first), (last, until)) if r[0] < r[1]]
    return [], [(since, until)]


def plan_windows(windows: Sequence[tuple[float, float]], *, daily: bool | None = None) -> SLIPlan:
    """Split each window ``[since, until)`` into the whole UTC days inside it (from the
    daily rollups, unless ``daily`` is false: ``None`` follows ``DAILY_ROLLUPS``), the
    whole hours of what is left (from the hourly rollups) and the partial hours at its
    edges (from the raw results). Then cut everything into disjoint segments."""
    use_days = DAILY_ROLLUPS if daily is None else daily
    day_ranges: list[list[tuple[float, float]]] = []
    hour_ranges: list[list[tuple[float, float]]] = []
    raw_ranges: list[list[tuple[float, float]]] = []
    for since, until in windows:
        days, rest = _split(since, until, DAY) if use_days else ([], [(since, until)] if since < until else [])
        hours: list[tuple[float, float]] = []
        raw: list[tuple[float, float]] = []
        for a, b in rest:
            whole, edges = _split(a, b, HOUR)
            hours += whole
            raw += edges
        day_ranges.append(days)
        hour_ranges.append(hours)
        raw_ranges.append(raw)
    day_segments, day_parts = _segments(day_ranges)
    hour_segments, hour_parts = _segments(hour_ranges)
    raw_segments, raw_parts = _segments(raw_ranges)
    return SLIPlan(
        hours=tuple((int(a), int(b)) for a, b in hour_segments),
        raw=tuple(raw_segments),
        windows=tuple(zip(hour_parts, raw_parts, strict=True)),
        days=tuple((int(a), int(b)) for a, b in day_segments),
        day_windows=tuple(day_parts) if use_days else (),
    )


def _segments(
    ranges: list[list[tuple[float, float]]],
) -> tuple[list[tuple[float, float]], list[tuple[int, ...]]]:
    """The disjoint pieces the ranges' ends cut them into, and which pieces make up each
    window's ranges."""
    points = sorted({point for window in ranges for r in window for point in r})
    pieces = [
        (a, b)
        for a, b in itertools.pairwise(points)
        if any(since <= a and b <= until for window in ranges for since, until in window)
    ]
    parts = [
        tuple(i for i, (a, b) in enumerate(pieces) if any(since <= a and b <= until for since, until in window))
        for window in ranges
    ]
    return pieces, parts
