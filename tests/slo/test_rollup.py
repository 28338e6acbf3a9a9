"""Daily SLO rollups: the same SLO report with them as without them, on real SQLite and PostgreSQL.

The data has what real history has: gaps (a check down for two days, runs missing here
and there), silenced runs (a maintenance window), skipped runs, errors, a check that
started in the middle of the 30 days, and runs exactly on midnight. The intervals are
whole or binary fractions of seconds, so sums come out the same in any order and the
reports can be compared exactly.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import Any

import asyncpg
import pytest

from fraiseql_checks.result import Outcome
from fraiseql_checks.slo.compute import statuses
from fraiseql_checks.slo.model import SLO, CheckSLI, Objective, Period
from fraiseql_checks.stores import SLITotals, Store, StoredResult, postgres, sli, sqlite
from tests.stores import conftest as store_fixtures

# The stores under test, as in tests/stores: SQLite, and PostgreSQL in a schema of its own.
make_store = store_fixtures.make_store
pg_schema = store_fixtures.pg_schema
run = store_fixtures.run
DAY = 86400
#: Midnight UTC, 2025-06-01.
D0 = 1_748_736_000
#: "now": 36 days later, at 19:02:17.5 UTC.
NOW = D0 + 36 * DAY + 19 * 3600 + 137.5
CHECKS = {"steady": 600.0, "flaky": 450.0, "late": 900.0}


def history() -> list[StoredResult]:
    rng = random.Random(19)
    rows = []
    for check, interval in CHECKS.items():
        # "late" started 10.3 days before now; the others before the 36 days began
        at = NOW - 10.3 * DAY if check == "late" else D0 - 2 * 3600 + rng.uniform(0, interval)
        while at < NOW + 600:
            down = check == "steady" and D0 + 12 * DAY <= at < D0 + 14 * DAY  # a two-day gap
            if not down and rng.random() > 0.02:  # and some runs missing
                outcome = rng.choice([Outcome.PASSED] * 40 + [Outcome.FAILED, Outcome.ERROR, Outcome.SKIPPED])
                silenced = D0 + 20 * DAY + 3600 <= at < D0 + 20 * DAY + 5 * 3600  # a maintenance window
                rows.append(
                    StoredResult(
                        check, at, 0.01, outcome, trace_id=f"{check}{at}", interval_s=interval, silenced=silenced
                    )
                )
            at += interval
        for day in range(0 if check != "late" else 27, 37, 3):  # exactly on midnight, and just before
            rows.append(StoredResult(check, D0 + day * DAY, 0.01, Outcome.FAILED, trace_id="m", interval_s=7.5))
            rows.append(StoredResult(check, D0 + day * DAY - 0.25, 0.01, Outcome.PASSED, trace_id="b", interval_s=0.5))
    rows.append(StoredResult("steady", D0 + 30 * DAY + 5, 0.01, Outcome.ERROR, trace_id="c", kind="collect"))
    rows.sort(key=lambda r: r.started_at)  # as a watcher writes them
    return rows


def slos() -> list[SLO]:
    out = []
    for check, interval in CHECKS.items():
        for period in (Period.parse("30d"), Period.parse("month"), Period.parse("week", "Europe/Paris")):
            out.append(
                SLO(
                    name=f"{check}-{period.label}",
                    service="s",
                    objective=Objective.parse("99%"),
                    period=period,
                    sli=CheckSLI(check, interval),
                    source=check,
                )
            )
    return out


def counted(rows: Sequence[StoredResult], check: str, since: float, until: float) -> tuple[Fraction, Fraction]:
    """Good and bad seconds of ``check`` in ``[since, until)``, summed here from the runs."""
    good = bad = Fraction(0)
    for r in rows:
        if r.check_id != check or not since <= r.started_at < until or r.kind != "check" or r.silenced:
            continue
        if r.outcome is Outcome.PASSED:
            good += Fraction(r.interval_s)
        elif r.outcome in (Outcome.FAILED, Outcome.ERROR):
            bad += Fraction(r.interval_s)
    return good, bad


async def write(s: Store, rows: Sequence[StoredResult]) -> None:
    for start in range(0, len(rows), 2000):
        await s.write(rows[start : start + 2000], [])


NOWS = [
    NOW,
    D0 + 36 * DAY,  # midnight exactly
    D0 + 36 * DAY + 1800.25,  # just after it
    D0 + 31 * DAY + 23 * 3600 + 3599.75,  # just before the next
]


def test_the_slo_report_is_the_same_with_and_without_daily_rollups(
    make_store: Callable[[], Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = history()
    definitions = slos()

    async def body(s: Store) -> list[tuple[list[dict[str, Any]], list[dict[str, Any]]]]:
        await write(s, rows)
        reports = []
        for now in NOWS:
            both = []
            for daily in (True, False):
                monkeypatch.setattr(sli, "DAILY_ROLLUPS", daily)
                both.append([status.to_json() for status in await statuses(definitions, now, s, None)])
            reports.append((both[0], both[1]))
        return reports

    reports = run(make_store(), body)
    for now, (with_days, without) in zip(NOWS, reports, strict=True):
        assert with_days == without
        for report, slo in zip(with_days, definitions, strict=True):
            # and both are right: the period's good and bad seconds, summed from the runs here
            good, bad = counted(rows, slo.sli.check_id, report["period_start"], now)  # type: ignore[union-attr]
            assert (report["good_seconds"], report["bad_seconds"]) == (float(good), float(bad)), (slo.id, now)
            assert report["status"] in ("ok", "exhausted")
    # the data is not trivial: the gap, the late start and the silenced hours are in the 30 days
    thirty = {r["id"]: r for r in reports[0][0]}
    assert thirty["s-steady-30d"]["bad_seconds"] > 0
    assert 0 < thirty["s-late-30d"]["good_seconds"] < thirty["s-steady-30d"]["good_seconds"]


def _direct(store: Store, sqlite_sql: str, pg_sql: str, *args: Any, many: bool = False) -> Any:
    """Run one statement on the store's database behind its back (``many``: once per row of
    ``args[0]``); the first column of its first row, if it returns any."""
    if isinstance(store, sqlite.SQLiteStore):
        conn = sqlite3.connect(store.path)
        try:
            if many:
                conn.executemany(sqlite_sql, args[0])
                row = None
            else:
                row = conn.execute(sqlite_sql, args).fetchone()
            conn.commit()
            return None if row is None else row[0]
        finally:
            conn.close()
    assert isinstance(store, postgres.PostgresStore)

    async def direct() -> Any:
        conn = await asyncpg.connect(store.url)
        try:
            if many:
                await conn.executemany(pg_sql, args[0])
                return None
            return await conn.fetchval(pg_sql, *args)
        finally:
            await conn.close()

    return asyncio.run(direct())


def _delete_hours(store: Store, since: int, until: int) -> None:
    """Remove the hourly rollups and raw results of ``[since, until)`` behind the store's back."""
    _direct(
        store,
        "DELETE FROM slo_rollups WHERE bucket >= ? AND bucket < ?",
        "DELETE FROM fraiseql_check_slo_rollups WHERE bucket >= $1 AND bucket < $2",
        since,
        until,
    )
    _direct(
        store,
        "DELETE FROM results WHERE started_at >= ? AND started_at < ?",
        "DELETE FROM fraiseql_check_results WHERE started_at >= to_timestamp($1) AND started_at < to_timestamp($2)",
        since,
        until,
    )


def test_whole_days_are_read_from_the_daily_rollups(make_store: Callable[[], Store]) -> None:
    """Three whole days cost three rows per check, not 72 hourly ones: with the hours gone,
    the days still count (reading hours, they would not)."""
    rows = [r for r in history() if D0 + 3 * DAY <= r.started_at < D0 + 7 * DAY]
    window = (D0 + 3 * DAY + 600, D0 + 6 * DAY + 600)  # 3 whole days and two raw edges
    run(make_store(), lambda s: write(s, rows))
    _delete_hours(make_store(), D0 + 4 * DAY, D0 + 6 * DAY)
    days = run(make_store(), lambda s: s.sli_totals(list(CHECKS), [window]))
    for check in ("steady", "flaky"):
        good, bad = counted(rows, check, *window)
        [got] = days[check]
        assert (got.good_s, got.bad_s) == (float(good), float(bad))
    assert days["late"] == [SLITotals()]


def test_migrating_fills_the_daily_rollups_from_the_hourly_ones(make_store: Callable[[], Store]) -> None:
    """A store made before the daily rollups: its whole days count from the moment it is
    opened, those whose raw results were pruned already too."""
    rows = [r for r in history() if D0 + 3 * DAY <= r.started_at < D0 + 7 * DAY]
    store = make_store()
    if isinstance(store, sqlite.SQLiteStore):
        conn = sqlite3.connect(store.path, isolation_level=None)
        for number, script in enumerate(sqlite.MIGRATIONS[:5], start=1):
            conn.executescript(f"BEGIN; {script}; PRAGMA user_version={number}; COMMIT;")
        conn.close()
    else:
        assert isinstance(store, postgres.PostgresStore)

        async def create() -> None:
            conn = await asyncpg.connect(store.url)
            try:
                await conn.execute("CREATE TABLE fraiseql_check_schema (version integer NOT NULL)")
                for number, script in enumerate(postgres.MIGRATIONS[:7], start=1):
                    await conn.execute(script)
                    await conn.execute("INSERT INTO fraiseql_check_schema VALUES ($1)", number)
            finally:
                await conn.close()

        asyncio.run(create())
    old_rows = [r for r in rows if r.started_at < D0 + 5 * DAY]
    new_rows = [r for r in rows if r.started_at >= D0 + 5 * DAY]
    # written by the version before: hourly rollups only (the daily table is not there yet)
    with pytest.raises((sqlite3.OperationalError, asyncpg.UndefinedTableError)):
        _count_daily(store)
    _write_old(store, old_rows)
    window = (D0 + 3 * DAY, D0 + 7 * DAY)  # four whole days

    async def body(s: Store) -> dict[str, list[SLITotals]]:
        await s.prune(D0 + 4 * DAY)  # the first day's raw results are gone: its hourly rollups answer
        await write(s, new_rows)
        return await s.sli_totals(list(CHECKS), [window])

    got = run(make_store(), body)
    assert _count_daily(store) > 0
    for check in ("steady", "flaky"):
        good, bad = counted(rows, check, *window)
        [totals] = got[check]
        assert (totals.good_s, totals.bad_s) == (float(good), float(bad))


def _write_old(store: Store, rows: Sequence[StoredResult]) -> None:
    """Write as a watcher of the previous version does: through the store's SQL, before migrating."""
    _direct(
        store,
        "INSERT INTO results (check_id, started_at, kind, duration_s, outcome, timed_out, message, trace_id,"
        " recorded_values, interval_s, silenced) VALUES (?, ?, ?, 0.01, ?, 0, '', 't', '{}', ?, ?)",
        "INSERT INTO fraiseql_check_results (check_id, started_at, kind, duration_s, outcome, timed_out,"
        " message, trace_id, recorded_values, interval_s, silenced)"
        " VALUES ($1, to_timestamp($2), $3, 0.01, $4, false, '', 't', '{}', $5, $6)",
        [(r.check_id, r.started_at, r.kind, r.outcome.value, r.interval_s, r.silenced) for r in rows],
        many=True,
    )


def _count_daily(store: Store) -> int:
    return int(
        _direct(
            store, "SELECT count(*) FROM slo_daily_rollups", "SELECT count(*) FROM fraiseql_check_slo_daily_rollups"
        )
    )


def test_prune_removes_the_daily_rollups_of_days_ended_by_rollups_before(make_store: Callable[[], Store]) -> None:
    rows = [r for r in history() if D0 + 3 * DAY <= r.started_at < D0 + 7 * DAY and r.check_id == "steady"]

    async def body(s: Store) -> tuple[dict[str, list[SLITotals]], dict[str, list[SLITotals]]]:
        await write(s, rows)
        window = [(D0 + 3 * DAY, D0 + 7 * DAY)]
        before = await s.sli_totals(["steady"], [(D0 + 5 * DAY, D0 + 7 * DAY)])
        # everything of the days that ended by 5 days + 1 h goes; the day then running stays
        await s.prune(D0 + 7 * DAY, rollups_before=D0 + 5 * DAY + 3600)
        return before, await s.sli_totals(["steady"], window)

    before, after = run(make_store(), body)
    assert before["steady"][0].good_runs > 0
    # the fifth day: its first hour's rollup is gone, but its daily one is kept
    assert after == before
