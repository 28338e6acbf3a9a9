"""How ``sli_totals`` splits windows into rollup days, rollup hours and raw edges (no store needed)."""

from __future__ import annotations

import itertools
import math

from fraiseql_checks.stores import SLITotals
from fraiseql_checks.stores.sli import day_of, hour_of, plan_windows

H = 1_749_996_000  # an hour boundary (14:00 UTC)
D = 1_749_945_600  # the start of its UTC day


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
    plan = plan_windows(windows, daily=False)
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


def test_day_of_is_exact_at_the_boundaries() -> None:
    assert day_of(D) == D
    assert day_of(math.nextafter(D, 0)) == D - 86400
    assert day_of(D + 86399.999_999) == D
    assert day_of(H) == D
    assert day_of(-1.0) == -86400


def test_a_window_is_its_whole_days_plus_the_whole_hours_and_raw_edges_of_its_partial_days() -> None:
    since, until = D - 86400 + 5 * 3600 + 600, D + 2 * 86400 + 3 * 3600 + 60
    plan = plan_windows([(since, until)], daily=True)
    [(hours, raw)] = plan.windows
    [days] = plan.day_windows
    assert [plan.days[i] for i in days] == [(D, D + 2 * 86400)]
    assert [plan.hours[i] for i in hours] == [(D - 86400 + 6 * 3600, D), (D + 2 * 86400, D + 2 * 86400 + 3 * 3600)]
    assert [plan.raw[i] for i in raw] == [(since, D - 86400 + 6 * 3600), (D + 2 * 86400 + 3 * 3600, until)]


def test_without_daily_rollups_the_same_window_reads_hours() -> None:
    since, until = D - 86400 + 5 * 3600 + 600, D + 2 * 86400 + 3 * 3600 + 60
    plan = plan_windows([(since, until)], daily=False)
    assert plan.days == () and plan.day_windows == ()
    [(hours, raw)] = plan.windows
    assert [plan.hours[i] for i in hours] == [(D - 86400 + 6 * 3600, D + 2 * 86400 + 3 * 3600)]
    assert [plan.raw[i] for i in raw] == [(since, D - 86400 + 6 * 3600), (D + 2 * 86400 + 3 * 3600, until)]


def test_a_window_shorter_than_a_day_or_within_one_reads_no_day() -> None:
    plan = plan_windows([(D + 600, D + 86400 - 60), (D - 3600, D + 3600), (D, D + 86400)], daily=True)
    assert [[plan.days[i] for i in days] for days in plan.day_windows] == [[], [], [(D, D + 86400)]]
    assert [[plan.hours[i] for i in hours] for hours, _ in plan.windows] == [
        [(D + 3600, D + 86400 - 3600)],
        [(D - 3600, D + 3600)],  # across midnight, no whole day: hours
        [],
    ]


def test_thirty_days_ending_now_read_days_then_hours_then_raw() -> None:
    now = H + 5 * 3600 + 120  # 19:02 UTC
    windows = [(now - length, now) for length in (300, 1800, 3600, 7200, 6 * 3600, 86400, 3 * 86400, 30 * 86400)]
    plan = plan_windows(windows, daily=True)
    for segments in (plan.days, plan.hours, plan.raw):  # disjoint: every row is read once
        assert all(a < b <= c < d for (a, b), (c, d) in itertools.pairwise(segments))
    hours, raw = plan.windows[-1]
    # 29 whole days; 4 whole hours before the first (20:00-24:00) and 19 after the last; 2 raw edges
    assert sum(plan.days[i][1] - plan.days[i][0] for i in plan.day_windows[-1]) == 29 * 86400
    assert sum(plan.hours[i][1] - plan.hours[i][0] for i in hours) == (4 + 19) * 3600
    assert sum(plan.raw[i][1] - plan.raw[i][0] for i in raw) == 3600
    # every window is covered exactly: its pieces add up to its length
    for (since, until), (hours, raw), days in zip(windows, plan.windows, plan.day_windows, strict=True):
        spans = [plan.days[i] for i in days] + [plan.hours[i] for i in hours] + [plan.raw[i] for i in raw]
        assert sum(b - a for a, b in spans) == until - since


def test_totals_add_the_day_segments_too() -> None:
    plan = plan_windows([(D, D + 2 * 86400), (D + 86400, D + 2 * 86400 + 1800)], daily=True)
    day_sums = [(i, "a", 86400.0, 0.0, 1440, 0) for i in range(len(plan.days))]
    raw_sums = [(i, "a", 0.0, 60.0, 0, 1) for i in range(len(plan.raw))]
    assert plan.totals(["a"], [], raw_sums, day_sums) == {
        "a": [SLITotals(2 * 86400.0, 0.0, 2880, 0), SLITotals(86400.0, 60.0, 1440, 1)]
    }
