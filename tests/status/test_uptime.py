"""Uptime from the rollups, and the overview's cached state changes, against SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import math
import threading
import types

import pytest

from fraiseql_checks.result import Outcome, Result
from fraiseql_checks.states import State, StateChange
from fraiseql_checks.status.board import CHANGES_SECONDS, StatusBoard
from fraiseql_checks.status.page import _overview_changes
from fraiseql_checks.status.uptime import DAY, DAYS, Uptime, UptimeCache, percent, uptimes
from fraiseql_checks.stores import Store, StoredResult

HOUR = 3600.0
#: Midday UTC, so that the days of the bar are whole.
NOW = math.floor(1_750_000_000 / DAY) * DAY + 12 * HOUR + 17.5
#: Hours ago (0 = the last hour) of failed runs: 8 between 8 and 29 days ago, 4 past 60 days.
FAILED_RECENT = {200, 250, 300, 350, 400, 450, 500, 700}
FAILED_OLD = {1500, 1501, 1502, 1503}


def run(outcome: Outcome, hours_ago: int, *, later: float = 0.0, silenced: bool = False) -> StoredResult:
    """A run of the hourly check in the hour ``hours_ago`` (``later`` seconds past its half)."""
    at = NOW - (hours_ago + 0.5) * HOUR + later
    return StoredResult(
        check_id="checks/api.py::check_hourly",
        started_at=at,
        duration_s=0.1,
        outcome=outcome,
        trace_id=f"t{at}",
        interval_s=HOUR,
        silenced=silenced,
    )


def history() -> list[StoredResult]:
    """An hourly check over 90 days: 12 failed hours, plus a skipped and a silenced run that count nothing."""
    failed = FAILED_RECENT | FAILED_OLD
    rows = [run(Outcome.FAILED if k in failed else Outcome.PASSED, k) for k in range(DAYS * 24)]
    rows.append(run(Outcome.SKIPPED, 3, later=60))
    rows.append(run(Outcome.FAILED, 5, later=60, silenced=True))
    return rows


def test_uptime_over_each_window_and_per_day(store: Store) -> None:
    async def body() -> dict[str, Uptime]:
        await store.open()
        try:
            await store.write(history(), [])
            return dict(await uptimes(store, ["checks/api.py::check_hourly", "checks/api.py::never_ran"], NOW))
        finally:
            await store.close()

    found = asyncio.run(body())
    hourly = found["checks/api.py::check_hourly"]
    assert hourly.windows["24h"] == 1.0
    assert hourly.windows["7d"] == 1.0
    assert hourly.windows["30d"] == pytest.approx(712 / 720)
    assert hourly.windows["90d"] == pytest.approx(2148 / 2160)
    assert [hourly.shown(w) for w in ("24h", "7d", "30d", "90d")] == ["100%", "100%", "98.89%", "99.44%"]
    days = hourly.days
    assert len(days) == DAYS and days[-1].start == math.floor(NOW / DAY) * DAY
    for index, day in enumerate(days):
        ran = [k for k in range(DAYS * 24) if day.start <= NOW - (k + 0.5) * HOUR < day.start + DAY]
        failed = [k for k in ran if k in FAILED_RECENT | FAILED_OLD]
        if not ran:
            assert day.uptime is None, index
        else:
            assert day.uptime == pytest.approx(1 - len(failed) / len(ran)), index
    failed_days = {math.floor((NOW - (k + 0.5) * HOUR) / DAY) * DAY for k in FAILED_RECENT | FAILED_OLD}
    assert {day.start for day in days if day.uptime is not None and day.uptime < 1} == failed_days
    never = found["checks/api.py::never_ran"]
    assert never.windows == {"24h": None, "7d": None, "30d": None, "90d": None}
    assert never.shown("30d") == "no data"


def test_thousands_of_checks_are_summed_off_the_event_loop_and_share_what_they_lack(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A page over 10,000 checks is about a million small sums and objects: on the event
    # loop that was seconds in which the watcher started no run (5.4 s for 10,000 checks).
    from fraiseql_checks.status import uptime as module
    from fraiseql_checks.stores import sli

    threads: dict[str, bool] = {}
    for owner, name in ((module, "_uptimes_of"), (sli.SLIPlan, "totals")):
        real = getattr(owner, name)

        def spy(*args: object, _real: object = real, _name: str = name) -> object:
            threads[_name] = threading.current_thread() is threading.main_thread()
            return _real(*args)  # type: ignore[operator]

        monkeypatch.setattr(owner, name, spy)
    checks = ["checks/api.py::check_hourly"] + [f"checks/many.py::check_{n}" for n in range(2000)]

    async def body() -> dict[str, Uptime]:
        await store.open()
        try:
            await store.write(history(), [])
            return dict(await uptimes(store, checks, NOW))
        finally:
            await store.close()

    found = asyncio.run(body())
    assert threads == {"totals": False, "_uptimes_of": False}  # neither ran on the loop's thread
    assert found[checks[0]].windows["30d"] == pytest.approx(712 / 720)
    never = {id(found[check]) for check in checks[1:]}
    assert len(never) == 1  # one shared "no data", not 2,000 copies of 90 days
    blank = found[checks[1]]
    assert blank.windows == dict.fromkeys(module.WINDOWS) and len(blank.days) == DAYS
    assert all(day.uptime is None and day.bad_s == 0 for day in blank.days)


def test_percentages_never_round_a_failure_up_to_100() -> None:
    assert percent(None) == "no data"
    assert percent(1.0) == "100%"
    assert percent(712 / 720) == "98.89%"
    assert percent(0.99999) == "99.99%"
    assert percent(0.0) == "0.00%"


def test_the_cache_asks_the_store_once_per_set_of_checks_until_cleared(store: Store) -> None:
    calls: list[int] = []

    async def body() -> None:
        await store.open()
        try:
            original = store.sli_totals

            async def counting(*args: object, **kwargs: object) -> object:
                calls.append(1)
                return await original(*args, **kwargs)  # type: ignore[arg-type]

            store.sli_totals = counting  # type: ignore[method-assign,assignment]
            cache = UptimeCache(store)
            await asyncio.gather(*(cache.get(["a", "b"]) for _ in range(5)))
            await cache.get(["b", "a"])
            assert len(calls) == 1
            await cache.get(["a"])  # another set of checks
            assert len(calls) == 2
            cache.clear()
            await cache.get(["a"])
            assert len(calls) == 3
        finally:
            await store.close()

    asyncio.run(body())


def test_the_overview_reads_the_state_changes_again_only_when_a_run_may_have_changed_a_state(store: Store) -> None:
    """A page load within ``CHANGES_SECONDS`` reuses the changes; a run whose outcome flips does not."""
    check_id = "checks/api.py::check_hourly"
    watcher = types.SimpleNamespace(writer=types.SimpleNamespace(store=store))
    board = StatusBoard(watcher)  # type: ignore[arg-type]

    def ran(passed: bool) -> None:
        outcome = Outcome.PASSED if passed else Outcome.FAILED
        board.fraiseql_report_result(Result(check_id, "check_hourly", outcome, started_at=NOW))

    def change(at: float, previous: State, state: State) -> StateChange:
        return StateChange(check_id, at, previous, state)

    async def body() -> list[int]:
        await store.open()
        try:
            seen = []
            ran(True)
            await store.write([], [change(NOW - 2 * HOUR, State.UNKNOWN, State.PASSING)])
            seen.append(len((await _overview_changes(watcher, board, NOW)).get(check_id, [])))  # type: ignore[arg-type]
            await store.write([], [change(NOW - HOUR, State.PASSING, State.FAILING)])
            ran(True)  # the same outcome: its state did not change
            seen.append(len((await _overview_changes(watcher, board, NOW + 1)).get(check_id, [])))  # type: ignore[arg-type]
            ran(False)
            seen.append(len((await _overview_changes(watcher, board, NOW + 2)).get(check_id, [])))  # type: ignore[arg-type]
            await store.write([], [change(NOW - 10, State.FAILING, State.PASSING)])
            later = NOW + 2 + CHANGES_SECONDS
            seen.append(len((await _overview_changes(watcher, board, later)).get(check_id, [])))  # type: ignore[arg-type]
            return seen
        finally:
            await store.close()

    assert asyncio.run(body()) == [1, 1, 2, 3]


def test_the_overview_draws_a_checks_sparkline_and_bar_again_only_after_a_new_run_or_uptime(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Drawing every card's SVG at each page load held the event loop (0.35 s for 2,000 checks)."""
    from pathlib import Path

    from fraiseql_checks.checks import CheckInfo
    from fraiseql_checks.spec import make_spec
    from fraiseql_checks.status import page, svg
    from fraiseql_checks.status.uptime import EMPTY
    from fraiseql_checks.watch.state import CheckState, Rules

    drawn: list[int] = []
    original = svg.sparkline

    def counting(points: object, label: str, *args: object) -> str:
        drawn.append(len(points))  # type: ignore[arg-type]
        return original(points, label, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(svg, "sparkline", counting)
    check_id = "checks/api.py::check_hourly"
    check = CheckInfo(
        id=check_id, name="check_hourly", function_name="check_hourly", path=Path("checks/api.py"), spec=make_spec()
    )
    watched = types.SimpleNamespace(check=check, state=CheckState(check_id, Rules()))
    watcher = types.SimpleNamespace(writer=None, is_silenced=lambda w, at: False)
    board = StatusBoard(types.SimpleNamespace(writer=types.SimpleNamespace(store=None)))  # type: ignore[arg-type]

    def card(uptime: Uptime = EMPTY) -> str:
        return str(page.check_view(watcher, board, watched, uptime, [], NOW).sparkline)  # type: ignore[arg-type]

    def ran(at: float) -> None:
        board.fraiseql_report_result(Result(check_id, "check_hourly", Outcome.PASSED, started_at=at, duration_s=0.1))

    ran(NOW - 2)
    first = card()
    assert card() == first and drawn == [1]  # a second page load draws nothing
    ran(NOW - 1)
    second = card()
    assert second != first and drawn == [1, 2]  # a new run: drawn again, with its point
    other = Uptime({name: None for name in EMPTY.windows}, ())
    card(other)
    assert drawn == [1, 2, 2]  # a new uptime (the cache refreshed): drawn again


def test_the_board_makes_the_run_lists_of_expected_checks_before_their_first_run() -> None:
    """Made at watch start, before the watcher freezes its start-up heap (so full
    collections of the garbage collector skip them), and then used by the runs."""
    board = StatusBoard(types.SimpleNamespace(writer=types.SimpleNamespace(store=None)))  # type: ignore[arg-type]
    board.expect(["a", "b"])
    made = board.recent["a"]
    assert list(made) == [] and set(board.recent) == {"a", "b"}
    board.fraiseql_report_result(Result("a", "a", Outcome.PASSED, started_at=NOW, duration_s=0.2))
    board.expect(["a"])  # again (a reload): kept, not emptied
    assert board.recent["a"] is made and list(made) == [(NOW, 0.2, True)]
