"""How ``sli_totals`` splits windows into rollup hours and raw edges (no store needed)."""

from __future__ import annotations

import itertools
import math

from fraiseql_checks.stores import SLITotals
from fraiseql_checks.stores.sli import hour_of, plan_windows

H = 1_749_996_000  # an hour boundary


def test_hour_of_is_exact_at_the_boundaries() -> None:
    assert hour_of(H) == H
    assert hour_of(math.nextafter(H, 0)) == H - 3600
    assert hour_of(H + 3599.999_999) == H
    assert hour_of(-1.0) == -3600


def test_a_window_is_its_whole_hours_plus_its_raw_edges() -> None:
    plan = plan_windows([(H + 600, H + 3 * 3600 + 60)])
    [(hours, raw)] = plan.windows
    assert [plan.hours[i] for i in hours] == [(H + 3600, H + 3 * 3600)]
    assert [plan.raw[i] for i in raw] == [(H + 600, H + 3600), (H + 3 * 3600, H + 3 * 3600 + 60)]


def test_windows_aligned_inside_one_hour_or_empty() -> None:
    plan = plan_windows([(H, H + 7200), (H + 60, H + 120), (H + 3000, H + 4000), (H, H), (H + 9, H)])
    spans = [([plan.hours[i] for i in hours], [plan.raw[i] for i in raw]) for hours, raw in plan.windows]
    assert spans == [
        ([(H, H + 7200)], []),  # exactly two hours: no raw results read
        ([], [(H + 60, H + 120)]),
        ([], [(H + 3000, H + 4000)]),  # no whole hour: all raw
        ([], []),
        ([], []),
    ]


def test_windows_ending_now_share_their_segments() -> None:
    now = H + 5 * 3600 + 120
    windows = [(now - length, now) for length in (300, 1800, 3600, 7200, 6 * 3600, 86400, 3 * 86400, 30 * 86400)]
    plan = plan_windows(windows)
    for segments in (plan.hours, plan.raw):  # disjoint: every row is read once
        assert all(a < b <= c < d for (a, b), (c, d) in itertools.pairwise(segments))
    # the 30-day window reads 30 days: 719 whole hours, and its two partial ones from the raw results
    hours, raw = plan.windows[-1]
    assert sum(plan.hours[i][1] - plan.hours[i][0] for i in hours) == 719 * 3600
    assert sum(plan.raw[i][1] - plan.raw[i][0] for i in raw) == 3600
    assert len(plan.hours) == 5  # 30d, 3d, 1d, 6h and 2h share the most recent hours


def test_totals_add_each_windows_segments() -> None:
    plan = plan_windows([(H, H + 7200), (H + 1800, H + 7200)])
    hour_sums = [(i, "a", 30.0, 0.0, 1, 0) for i in range(len(plan.hours))]
    raw_sums = [(i, "a", 0.0, 30.0, 0, 1) for i in range(len(plan.raw))]
    totals = plan.totals(["a", "b"], hour_sums, raw_sums)
    assert totals == {
        "a": [SLITotals(60.0, 0.0, 2, 0), SLITotals(30.0, 30.0, 1, 1)],
        "b": [SLITotals(), SLITotals()],
    }
