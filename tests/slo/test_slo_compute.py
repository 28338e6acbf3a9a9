"""SLIs, budgets and burn rates from the real result store, against hand-computed answers."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import pytest

from fraiseql_checks.result import Outcome
from fraiseql_checks.slo.compute import check_statuses
from fraiseql_checks.slo.model import SLO, CheckSLI, Objective, Period
from fraiseql_checks.stores import StoredResult
from fraiseql_checks.stores.sqlite import SQLiteStore

DAY = 86400.0
#: 2026-02-15T12:34:56Z: not on an hour boundary, so the windows have partial hours at both ends.
NOW = 1771158896.0
CHECK = "checks/api/check_api.py::check_api"


def slo(objective: str = "99.9%", period: str = "30d", check: str = CHECK, interval: float = 300.0) -> SLO:
    return SLO(
        name="check_api",
        service="api",
        objective=Objective.parse(objective),
        period=Period.parse(period),
        sli=CheckSLI(check, interval),
        source=check,
    )


def run(outcome: Outcome, at: float, interval: float = 300.0, *, silenced: bool = False, check: str = CHECK):  # type: ignore[no-untyped-def]
    return StoredResult(check, at, 0.01, outcome, interval_s=interval, silenced=silenced)


def status_of(tmp_path: Path, results: Iterable[StoredResult], target: SLO, now: float = NOW):  # type: ignore[no-untyped-def]
    async def go():  # type: ignore[no-untyped-def]
        store = SQLiteStore(tmp_path / "results.db")
        await store.open()
        try:
            batch = list(results)
            for start in range(0, len(batch), 5000):
                await store.write(batch[start : start + 5000], [])
            (status,) = await check_statuses(store, [target], now)
            return status
        finally:
            await store.close()

    return asyncio.run(go())


def thirty_days(failures: set[int], interval: float = 300.0) -> list[StoredResult]:
    """A run every ``interval`` over the 30 days before NOW (8640 runs at 5 minutes); run
    number ``i`` starts ``10 + i * interval`` seconds into the period and fails if in ``failures``."""
    start = NOW - 30 * DAY
    count = int(30 * DAY // interval)
    return [
        run(Outcome.FAILED if i in failures else Outcome.PASSED, start + 10 + i * interval, interval)
        for i in range(count)
    ]


def test_thirty_days_with_eight_failures_give_the_exact_budget(tmp_path: Path) -> None:
    # 8640 runs of 5 minutes, 8 failed: SLI 8632/8640. Budget 0.1%: consumed (8/8640)/0.001 = 25/27,
    # remaining 2/27, i.e. 2/27 of 43m12s = 192 s.
    status = status_of(tmp_path, thirty_days({100, 2000, 3000, 4000, 5000, 6000, 7000, 8000}), slo())
    assert status.good == 8632 * 300 and status.bad == 8 * 300
    assert status.sli == Fraction(8632, 8640)
    assert status.consumed == Fraction(25, 27)
    assert status.remaining == Fraction(2, 27)
    assert status.budget_seconds == pytest.approx(2592.0)
    assert status.remaining_seconds == pytest.approx(192.0)
    assert status.state == "ok"


def test_an_objective_met_to_the_last_run_leaves_exactly_nothing(tmp_path: Path) -> None:
    # 1000 runs, 1 failed, objective 99.9%: not 8.9e-16 left (what floats would say), but 0.
    results = [run(Outcome.FAILED if i == 500 else Outcome.PASSED, NOW - 1000 * 60 + i * 60, 60) for i in range(1000)]
    status = status_of(tmp_path, results, slo(interval=60))
    assert status.sli == Fraction(999, 1000)
    assert status.remaining == 0
    assert status.remaining_seconds == 0.0
    assert status.state == "exhausted"
    assert 1 - (1 - 0.999) / (1 - 0.999) == 0 and 1 - 0.001 / (1 - 0.999) != 0  # what floats would say


def test_no_data_is_unknown_not_a_hundred_percent(tmp_path: Path) -> None:
    status = status_of(tmp_path, [run(Outcome.PASSED, NOW - 100, check="checks/other.py::check_other")], slo())
    assert status.sli is None and status.remaining is None and status.consumed is None
    assert status.state == "unknown"
    assert status.fastest_burn is None
    assert all(rate is None for rate in status.burn_rates.values())


def test_silenced_and_skipped_runs_count_for_nothing(tmp_path: Path) -> None:
    results = [
        run(Outcome.PASSED, NOW - 3000, 60),
        run(Outcome.FAILED, NOW - 2000, 60, silenced=True),  # a maintenance window covered it
        run(Outcome.SKIPPED, NOW - 1000, 60),
        run(Outcome.ERROR, NOW - 500, 60),
    ]
    status = status_of(tmp_path, results, slo(interval=60))
    assert (status.good, status.bad) == (60, 60)
    assert status.sli == Fraction(1, 2)


def test_each_run_counts_for_its_interval(tmp_path: Path) -> None:
    # The interval changed from 1m to 5m: the SLI is about time, not run counts.
    results = [run(Outcome.FAILED, NOW - 7200 + i * 60, 60) for i in range(5)]
    results += [run(Outcome.PASSED, NOW - 3600 + i * 300, 300) for i in range(5)]
    status = status_of(tmp_path, results, slo())
    assert status.sli == Fraction(1500, 1800)


def test_burn_rates_per_window(tmp_path: Path) -> None:
    # Every minute for the last 3 days; the last 10 minutes all failed, and one run 2 days ago.
    minutes = 3 * 24 * 60
    failing = set(range(minutes - 10, minutes)) | {minutes - 2 * 24 * 60}
    results = [
        run(Outcome.FAILED if i in failing else Outcome.PASSED, NOW - minutes * 60 + i * 60, 60) for i in range(minutes)
    ]
    status = status_of(tmp_path, results, slo(interval=60))
    budget = Fraction(1, 1000)
    expected_ratios = {
        "5m": Fraction(5, 5),
        "30m": Fraction(10, 30),
        "1h": Fraction(10, 60),
        "2h": Fraction(10, 120),
        "6h": Fraction(10, 360),
        "1d": Fraction(10, 1440),
        "3d": Fraction(11, 4320),
    }
    assert dict(status.error_ratios) == expected_ratios
    assert status.burn_rate("5m") == 1 / budget == 1000
    assert status.fastest_burn == ("5m", Fraction(1000))
    assert status.sli == 1 - Fraction(11, 4320)


def test_a_calendar_month_starts_on_the_first(tmp_path: Path) -> None:
    # NOW is 2026-02-15T12:34:56Z; February started 1769904000. January's failure does not count.
    feb_1 = 1769904000.0
    results = [run(Outcome.FAILED, feb_1 - 600, 300)]
    results += [run(Outcome.FAILED if i == 0 else Outcome.PASSED, feb_1 + i * 300, 300) for i in range(1000)]
    status = status_of(tmp_path, results, slo(objective="99%", period="month"))
    assert status.start == feb_1 and status.length == 28 * DAY
    assert status.sli == Fraction(999, 1000)
    assert status.remaining == 1 - Fraction(1, 1000) / Fraction(1, 100)
    assert status.budget_seconds == pytest.approx(0.01 * 28 * DAY)
