"""The SLI arithmetic both SQL stores share: hourly rollup buckets, and the plan that
answers ``sli_totals`` for several windows reading each row once."""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Iterable, Sequence
from typing import Any

from fraiseql_checks.stores import SLITotals

#: The width of a rollup bucket, in seconds.
HOUR = 3600


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


@dataclasses.dataclass(frozen=True)
class SLIPlan:
    """How a store answers ``sli_totals`` for a set of windows.

    The windows' whole hours and raw edges are cut into disjoint segments, so each
    rollup row and each raw result is read once however many windows share it (the
    30-day window contains the 3-day one): the store sums each segment per check,
    ``totals`` adds the segments of each window.
    """

    #: Disjoint ``[since, until)`` ranges of rollup buckets (hour starts).
    hours: tuple[tuple[int, int], ...]
    #: Disjoint ``[since, until)`` ranges of raw results.
    raw: tuple[tuple[float, float], ...]
    #: For each window, the indexes of its segments in ``hours`` and in ``raw``.
    windows: tuple[tuple[tuple[int, ...], tuple[int, ...]], ...]

    def totals(
        self,
        check_ids: Iterable[str],
        hour_sums: Iterable[Sequence[Any]],
        raw_sums: Iterable[Sequence[Any]],
    ) -> dict[str, list[SLITotals]]:
        """Add up per window the segment sums the store found, rows of
        ``(segment index, check id, good_s, bad_s, good_runs, bad_runs)``."""
        count = len(self.windows)
        sums = {check_id: [[0.0, 0.0, 0.0, 0.0] for _ in range(count)] for check_id in check_ids}
        for part, rows in ((0, hour_sums), (1, raw_sums)):
            # which windows each segment belongs to
            windows_of: dict[int, list[int]] = {}
            for window, parts in enumerate(self.windows):
                for segment in parts[part]:
                    windows_of.setdefault(segment, []).append(window)
            for segment, check_id, good_s, bad_s, good_runs, bad_runs in rows:
                per_window = sums.get(check_id)
                if per_window is None:
                    continue
                for window in windows_of.get(segment, ()):
                    total = per_window[window]
                    total[0] += good_s or 0.0
                    total[1] += bad_s or 0.0
                    total[2] += good_runs or 0
                    total[3] += bad_runs or 0
        out = {
            check_id: [SLITotals(float(g), float(b), int(gr), int(br)) for g, b, gr, br in per_window]
            for check_id, per_window in sums.items()
        }
        return out


def plan_windows(windows: Sequence[tuple[float, float]]) -> SLIPlan:
    """Split each window ``[since, until)`` into the whole hours inside it (from the
    rollups) and the partial hours at its edges (from the raw results); a window
    without a whole hour is all raw. Then cut everything into disjoint segments."""
    hour_ranges: list[list[tuple[float, float]]] = []
    raw_ranges: list[list[tuple[float, float]]] = []
    for since, until in windows:
        first = hour_of(since)
        if first < since:
            first += HOUR
        last = hour_of(until)
        if since >= until:
            hour_ranges.append([])
            raw_ranges.append([])
        elif first < last:
            hour_ranges.append([(first, last)])
            raw_ranges.append([r for r in ((since, first), (last, until)) if r[0] < r[1]])
        else:
            hour_ranges.append([])
            raw_ranges.append([(since, until)])
    hours, hour_parts = _segments(hour_ranges)
    raw, raw_parts = _segments(raw_ranges)
    return SLIPlan(
        hours=tuple((int(a), int(b)) for a, b in hours),
        raw=tuple(raw),
        windows=tuple(zip(hour_parts, raw_parts, strict=True)),
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
