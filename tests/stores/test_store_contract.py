"""The contract every result store keeps, run against SQLite and a real PostgreSQL."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path

import asyncpg
import pytest

from fraiseql_checks.config import UsageError
from fraiseql_checks.outbox import Kind, OutboxEntry, Status, entry_id
from fraiseql_checks.result import Outcome
from fraiseql_checks.silences import Matchers, Silence
from fraiseql_checks.stores import SLITotals, StateRecord, Store, StoredResult, StoreUnavailable, postgres, sqlite
from fraiseql_checks.watch.state import State, StateChange
from tests.stores.conftest import run

T0 = 1_750_000_000.0
#: An hour boundary (UTC), for the rollup tests.
H = 1_749_996_000.0


def result(check: str, at: float, outcome: Outcome = Outcome.PASSED, **extra: object) -> StoredResult:
    return StoredResult(
        check_id=check,
        started_at=at,
        duration_s=0.25,
        outcome=outcome,
        message=str(extra.pop("message", "")),
        trace_id=f"{check}-{at}",
        values=dict(extra.pop("values", {})),  # type: ignore[call-overload]
        timed_out=bool(extra.pop("timed_out", False)),
        kind=str(extra.pop("kind", "check")),
        interval_s=float(extra.pop("interval_s", 0.0)),  # type: ignore[arg-type]
        silenced=bool(extra.pop("silenced", False)),
    )


def same(a: StoredResult, b: StoredResult) -> bool:
    """Equal, with times to the microsecond (what PostgreSQL's timestamptz keeps)."""
    return a.started_at == pytest.approx(b.started_at, abs=1e-6) and dataclasses.replace(
        a, started_at=0
    ) == dataclasses.replace(b, started_at=0)


def test_results_of_a_check_in_a_window(store: Store) -> None:
    rows = [result("a", T0 + i, values={"lag_seconds": i / 2}) for i in range(10)]
    rows.append(result("b", T0 + 3, Outcome.FAILED, message="assert 1 == 2\nwhere 1 = f()", timed_out=True))
    rows.append(result("a", T0 + 4.5, Outcome.ERROR, message="ConnectionError: 'quoted' \"both\" é"))

    async def body(s: Store) -> tuple[list[StoredResult], ...]:
        await s.write(rows[:5], [])
        await s.write(rows[5:], [])
        return (
            await s.results("a", T0 + 2, T0 + 6),
            await s.results("b", T0, T0 + 100),
            await s.results("a", T0, T0 + 100, limit=3),
            await s.results("nope", T0, T0 + 100),
        )

    window, b, limited, none = run(store, body)
    assert [r.started_at for r in window] == pytest.approx([T0 + 2, T0 + 3, T0 + 4, T0 + 4.5, T0 + 5])
    assert all(
        same(got, want) for got, want in zip(window, [rows[2], rows[3], rows[4], rows[11], rows[5]], strict=True)
    )
    assert len(b) == 1 and same(b[0], rows[10])
    assert [r.started_at for r in limited] == pytest.approx([T0, T0 + 1, T0 + 2])
    assert none == []


def test_state_changes_in_a_window(store: Store) -> None:
    changes = [
        StateChange("a", T0 + 1, State.UNKNOWN, State.PASSING, reason="first passing run"),
        StateChange("b", T0 + 2, State.PASSING, State.FAILING, True, "3 failing runs in a row", "boom", "t1", 3),
        StateChange("a", T0 + 5, State.PASSING, State.FLAPPING, reason="5 state changes within 10m"),
    ]

    async def body(s: Store) -> tuple[list[StateChange], ...]:
        await s.write([result("a", T0)], changes)
        return await s.state_changes(T0, T0 + 3), await s.state_changes(T0, T0 + 10, check_id="a")

    window, of_a = run(store, body)
    assert [(c.check_id, c.state) for c in window] == [("a", State.PASSING), ("b", State.FAILING)]
    assert window[1].silenced and window[1].message == "boom" and window[1].consecutive_failures == 3
    assert window[1].at == pytest.approx(T0 + 2, abs=1e-6)
    assert [c.state for c in of_a] == [State.PASSING, State.FLAPPING]


def test_writing_a_batch_twice_stores_it_once(store: Store) -> None:
    rows = [result("a", T0 + i) for i in range(3)]
    change = StateChange("a", T0, State.UNKNOWN, State.PASSING)

    async def body(s: Store) -> tuple[int, int]:
        await s.write(rows, [change])
        await s.write(rows, [change])  # a retry after a lost acknowledgement
        return len(await s.results("a", 0, T0 * 2)), len(await s.state_changes(0, T0 * 2))

    assert run(store, body) == (3, 1)


def test_prune_removes_what_is_older_than_the_retention(store: Store) -> None:
    async def body(s: Store) -> tuple[int, list[StoredResult], list[StateChange]]:
        await s.write(
            [result("a", T0 + i) for i in range(10)],
            [
                StateChange("a", T0, State.UNKNOWN, State.PASSING),
                StateChange("a", T0 + 8, State.PASSING, State.FAILING),
            ],
        )
        removed = await s.prune(T0 + 7)
        return removed, await s.results("a", 0, T0 * 2), await s.state_changes(0, T0 * 2)

    removed, left, changes = run(store, body)
    assert removed == 8
    assert [r.started_at for r in left] == pytest.approx([T0 + 7, T0 + 8, T0 + 9])
    assert [c.state for c in changes] == [State.FAILING]


def test_opening_again_keeps_the_data(make_store: Callable[[], Store]) -> None:
    async def first(s: Store) -> None:
        await s.write([result("a", T0)], [])

    async def second(s: Store) -> list[StoredResult]:
        return await s.results("a", 0, T0 * 2)

    run(make_store(), first)
    assert len(run(make_store(), second)) == 1  # the tables exist: no migration runs twice


def test_interval_and_silenced_round_trip(store: Store) -> None:
    rows = [
        result("a", T0, interval_s=30.0),
        result("a", T0 + 30, Outcome.FAILED, interval_s=30.0, silenced=True),
        result("a", T0 + 60, interval_s=0.5),
    ]

    async def body(s: Store) -> list[StoredResult]:
        await s.write(rows, [])
        return await s.results("a", 0, T0 * 2)

    stored = run(store, body)
    assert [(r.interval_s, r.silenced) for r in stored] == [(30.0, False), (30.0, True), (0.5, False)]
    assert all(same(got, want) for got, want in zip(stored, rows, strict=True))


# -- SLO rollups and sli_totals --------------------------------------------------------


def counted(rows: Sequence[StoredResult]) -> SLITotals:
    """What ``sli_totals`` must say of these results, summed the slow way."""
    total = SLITotals()
    for r in rows:
        if r.kind != "check" or r.silenced or r.outcome is Outcome.SKIPPED:
            continue
        good = r.outcome is Outcome.PASSED
        total += SLITotals(r.interval_s * good, r.interval_s * (not good), int(good), int(not good))
    return total


async def brute_force(
    s: Store, checks: Sequence[str], windows: Sequence[tuple[float, float]]
) -> dict[str, list[SLITotals]]:
    return {c: [counted(await s.results(c, since, until)) for since, until in windows] for c in checks}


def assert_totals(got: dict[str, list[SLITotals]], want: dict[str, list[SLITotals]]) -> None:
    assert got.keys() == want.keys()
    for check, totals in want.items():
        for window, (g, w) in enumerate(zip(got[check], totals, strict=True)):
            assert (g.good_runs, g.bad_runs) == (w.good_runs, w.bad_runs), (check, window)
            assert g.good_s == pytest.approx(w.good_s) and g.bad_s == pytest.approx(w.bad_s), (check, window)


def mixed_runs(seed: int, hours: int = 5) -> list[StoredResult]:
    """Runs of three checks over ``hours`` hours from ``H``: every outcome and kind,
    some silenced, some exactly on hour boundaries or just around them."""
    rng = random.Random(seed)
    rows = []
    for check, interval in (("a", 30.0), ("b", 45.0), ("c", 600.0)):
        at = H - 3 * interval + rng.uniform(0, interval)
        while at < H + hours * 3600:
            outcome = rng.choice([Outcome.PASSED] * 6 + [Outcome.FAILED, Outcome.ERROR, Outcome.SKIPPED])
            rows.append(result(check, at, outcome, interval_s=interval, silenced=rng.random() < 0.1))
            at += interval
        for hour in range(hours):  # on the boundaries, and as close before as PostgreSQL keeps
            rows.append(result(check, H + hour * 3600, rng.choice([Outcome.PASSED, Outcome.FAILED]), interval_s=7.0))
            rows.append(result(check, H + hour * 3600 - 0.000_001, Outcome.ERROR, interval_s=11.0))
    rows += [
        result("collect-error", H + 100, Outcome.ERROR, kind="collect"),
        result("b", H + 101, Outcome.ERROR, kind="teardown", interval_s=45.0),
    ]
    rng.shuffle(rows)
    return rows


def test_rollups_count_each_run_once_and_only_what_counts(store: Store) -> None:
    rows = [
        result("a", H + 10, interval_s=30.0),
        result("a", H + 40, Outcome.FAILED, interval_s=30.0),
        result("a", H + 70, Outcome.ERROR, interval_s=30.0),
        result("a", H + 100, Outcome.SKIPPED, interval_s=30.0),
        result("a", H + 130, Outcome.FAILED, interval_s=30.0, silenced=True),
        result("a", H + 3600, interval_s=30.0),  # the next hour
        result("a", H + 160, Outcome.ERROR, kind="collect"),
        result("a", H + 190, Outcome.ERROR, kind="teardown", interval_s=30.0),
    ]
    whole_hours = [(H, H + 3600), (H, H + 7200), (H - 3600, H + 10 * 3600)]

    async def body(s: Store) -> dict[str, list[SLITotals]]:
        await s.write(rows[:3], [])
        await s.write(rows, [])  # a retry of a batch of which part was stored
        await s.write(rows, [])
        await s.prune(H + 3 * 3600)  # no raw results left: only the rollups can answer
        assert await s.results("a", 0, T0 * 2) == []
        return await s.sli_totals(["a", "nope"], whole_hours)

    got = run(store, body)
    assert got["a"] == [
        SLITotals(30.0, 60.0, 1, 2),
        SLITotals(60.0, 60.0, 2, 2),
        SLITotals(60.0, 60.0, 2, 2),
    ]
    assert got["nope"] == [SLITotals()] * 3


@pytest.mark.parametrize("rows_per_statement", [sqlite.ROWS_PER_STATEMENT, 2])
def test_sli_totals_equal_the_sum_of_the_raw_results(
    store: Store, monkeypatch: pytest.MonkeyPatch, rows_per_statement: int
) -> None:
    # SQLite: the writes and the query's windows and checks, a few rows per statement too
    if rows_per_statement != sqlite.ROWS_PER_STATEMENT and not isinstance(store, sqlite.SQLiteStore):
        pytest.skip("rows per statement are SQLite's")
    monkeypatch.setattr(sqlite, "ROWS_PER_STATEMENT", rows_per_statement)
    rows = mixed_runs(seed=1)
    rng = random.Random(2)
    windows = [
        (H, H + 3600),  # exactly one hour
        (H + 3600, H + 3 * 3600),  # exactly two
        (H - 3600, H + 6 * 3600),  # everything
        (H + 600, H + 1200),  # inside one hour
        (H + 3000, H + 4000),  # across one boundary, no whole hour
        (H + 1800, H + 3 * 3600 + 1800),  # edges and whole hours
        (H + 3600 - 0.000_001, H + 7200),  # a run exactly at the start, none at the end
        (H + 3600, H + 7200 + 0.000_001),
        (H + 3600 - 0.000_001, H + 3600),
        (H + 100, H + 100),  # empty
        (H + 500, H + 100),  # backwards: empty
    ]
    for _ in range(30):
        since = H + rng.uniform(-1800, 5 * 3600)
        windows.append((since, since + rng.choice([rng.uniform(1, 3600), rng.uniform(3600, 4 * 3600)])))
    checks = ["a", "b", "c", "collect-error", "nope"]

    async def body(s: Store) -> tuple[dict[str, list[SLITotals]], dict[str, list[SLITotals]]]:
        for start in range(0, len(rows), 500):
            await s.write(rows[start : start + 500], [])
        return await s.sli_totals(checks, windows), await brute_force(s, checks, windows)

    got, want = run(store, body)
    assert_totals(got, want)
    assert want["a"][2].good_runs > 300 and want["a"][2].bad_s > 0  # the data is not trivial
    assert got["nope"] == got["collect-error"] == [SLITotals()] * len(windows)


def test_a_pruned_edge_counts_nothing_and_the_whole_hours_still_count(store: Store) -> None:
    rows = mixed_runs(seed=3)
    window = (H + 1800, H + 4 * 3600 + 900)

    async def body(s: Store) -> tuple[dict[str, list[SLITotals]], ...]:
        await s.write(rows, [])
        before = await brute_force(s, ["a", "b"], [(H + 3600, window[1])])
        await s.prune(H + 3600 + 1200)  # the raw results of the first hour and part of the second
        return before, await s.sli_totals(["a", "b"], [window])

    before, after = run(store, body)
    assert_totals(after, before)


def test_prune_removes_the_rollups_of_hours_ended_by_rollups_before(store: Store) -> None:
    rows = mixed_runs(seed=4)

    async def body(s: Store) -> tuple[int, int, dict[str, list[SLITotals]], dict[str, list[SLITotals]]]:
        await s.write(rows, [])
        want = await brute_force(s, ["a", "b"], [(H + 2 * 3600, H + 5 * 3600)])
        kept = await s.prune(H + 3 * 3600)  # rollups are kept unless asked
        removed = await s.prune(H + 3 * 3600, rollups_before=H + 2 * 3600 + 1800)
        return kept, removed, want, await s.sli_totals(["a", "b"], [(H - 3600, H + 5 * 3600)])

    kept, removed, want, got = run(store, body)
    assert kept > 0
    # the hours H - 1h, H and H + 1h of checks a, b and c (kept: H + 2h, which ends after the cutoff)
    assert removed == 3 * 3
    assert_totals(got, want)


def test_concurrent_writers_count_each_run_once(make_store: Callable[[], Store]) -> None:
    rows = mixed_runs(seed=5, hours=3)
    batches = [rows[start : start + 100] for start in range(0, len(rows), 100)]
    windows = [(H - 3600, H + 4 * 3600), (H, H + 3600), (H + 1000, H + 9000)]

    async def main() -> tuple[dict[str, list[SLITotals]], dict[str, list[SLITotals]]]:
        stores = [make_store() for _ in range(4)]
        for s in stores:
            await s.open()
        try:
            # every writer writes every batch, in its own order: each run is stored and counted once
            await asyncio.gather(
                *(write_all(s, random.Random(number).sample(batches, len(batches))) for number, s in enumerate(stores))
            )
            return await stores[0].sli_totals(["a", "b", "c"], windows), await brute_force(
                stores[1], ["a", "b", "c"], windows
            )
        finally:
            for s in stores:
                await s.close()

    got, want = asyncio.run(main())
    assert_totals(got, want)
    assert sum(t.good_runs + t.bad_runs for t in want["a"][:1]) > 100


async def write_all(s: Store, batches: Sequence[Sequence[StoredResult]]) -> None:
    for batch in batches:
        await s.write(batch, [])


def test_a_sqlite_store_of_a_newer_schema_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    """A newer version may keep the rollups differently (schema 7 dropped the triggers):
    writing to its store without them would lose SLO data silently."""
    path = tmp_path / "results.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {len(sqlite.MIGRATIONS) + 1}")
    conn.close()
    with pytest.raises(UsageError, match=r"has schema 8, from a newer fraiseql-checks \(this one knows 7\)"):
        run(sqlite.SQLiteStore(path), lambda s: s.load_states())


def test_migrating_fills_the_rollups_from_the_results_stored_before(make_store: Callable[[], Store]) -> None:
    """Results from before the rollups count as runs of 0 seconds (their interval is unknown)."""
    old_rows = [
        ("a", H + 10, "passed"),
        ("a", H + 20, "failed"),
        ("a", H + 3610, "error"),
        ("a", H + 3620, "skipped"),
        ("b", H + 30, "passed"),
    ]
    store = make_store()
    if isinstance(store, sqlite.SQLiteStore):
        conn = sqlite3.connect(store.path)
        conn.executescript(sqlite.MIGRATIONS[0] + "; PRAGMA user_version = 1;")
        conn.executemany("INSERT INTO results VALUES (?, ?, 'check', 0.1, ?, 0, '', 't', '{}')", old_rows)
        conn.commit()
        conn.close()
    else:
        assert isinstance(store, postgres.PostgresStore)

        async def create() -> None:
            conn = await asyncpg.connect(store.url)
            try:
                await conn.execute(postgres.MIGRATIONS[0])
                await conn.execute("CREATE TABLE fraiseql_check_schema (version integer NOT NULL)")
                await conn.execute("INSERT INTO fraiseql_check_schema VALUES (1)")
                await conn.executemany(
                    "INSERT INTO fraiseql_check_results VALUES ($1, to_timestamp($2), 'check', 0.1, $3, false, '', 't', '{}')",
                    old_rows,
                )
            finally:
                await conn.close()

        asyncio.run(create())

    async def body(s: Store) -> tuple[list[StoredResult], dict[str, list[SLITotals]]]:
        await s.write([result("a", H + 30, interval_s=30.0)], [])  # a new run
        await s.prune(H + 7200)  # only the rollups are left
        return await s.results("a", 0, T0 * 2), await s.sli_totals(["a", "b"], [(H, H + 7200), (H, H + 3600)])

    left, totals = run(store, body)
    assert left == []
    assert run(make_store(), lambda s: s.load_states()) == {}  # the states' table came with the migrations
    assert totals == {
        "a": [SLITotals(30.0, 0.0, 2, 2), SLITotals(30.0, 0.0, 2, 1)],
        "b": [SLITotals(0.0, 0.0, 1, 0), SLITotals(0.0, 0.0, 1, 0)],
    }


# -- check states ------------------------------------------------------------------------


def state(check: str, at: float, **extra: object) -> StateRecord:
    values: dict[str, object] = {
        "base": State.FAILING,
        "state": State.FAILING,
        "consecutive_failures": 3,
        "failures": (at - 20.5, at - 10.25, at + 0.123456789),  # kept exactly: the machine compares them
        "changes": (at - 600.0, at - 0.1),
        "since": at - 0.5,
        "updated_at": at,
    }
    values.update(extra)
    return StateRecord(check, **values)  # type: ignore[arg-type]


def test_check_states_are_kept_one_per_check_the_newest_written(make_store: Callable[[], Store]) -> None:
    first = [state("a", T0), state("b", T0, base=State.PASSING, state=State.FLAPPING, consecutive_failures=0)]
    newer_a = state("a", T0 + 30, consecutive_failures=4, consecutive_successes=0, failures=(), changes=())
    fresh = StateRecord("c", State.UNKNOWN, State.UNKNOWN)  # a machine that saw no run yet

    async def body(s: Store) -> tuple[dict[str, StateRecord], dict[str, StateRecord]]:
        empty = await s.load_states()
        await s.write([result("a", T0)], [], first)
        await s.write([result("a", T0 + 30)], [], [newer_a, fresh])
        await s.write([result("a", T0 + 30)], [], [newer_a, fresh])  # a retry
        return empty, await s.load_states()

    empty, loaded = run(make_store(), body)
    assert empty == {}
    assert loaded == {"a": newer_a, "b": first[1], "c": fresh}

    async def reopened(s: Store) -> dict[str, StateRecord]:
        return await s.load_states()

    assert run(make_store(), reopened) == loaded


def test_a_batch_that_fails_writes_no_state(store: Store) -> None:
    """States go in the transaction of the results and changes they came with."""

    async def body(s: Store) -> tuple[dict[str, StateRecord], list[StateChange], list[StoredResult]]:
        await s.write([], [], [state("a", T0)])
        broken = result("a", T0 + 2, message="\ud800")  # a lone surrogate: no UTF-8 for it
        with pytest.raises((UnicodeEncodeError, StoreUnavailable)):
            await s.write(
                [result("a", T0 + 1), broken],
                [StateChange("a", T0 + 1, State.FAILING, State.PASSING)],
                [state("a", T0 + 1, base=State.PASSING, state=State.PASSING)],
            )
        return await s.load_states(), await s.state_changes(0, T0 * 2), await s.results("a", 0, T0 * 2)

    loaded, changes, results = run(store, body)
    assert loaded == {"a": state("a", T0)} and changes == [] and results == []


def test_prune_removes_the_states_of_checks_that_did_not_run_within_the_retention(store: Store) -> None:
    async def body(s: Store) -> tuple[int, dict[str, StateRecord]]:
        await s.write(
            [],
            [],
            [
                state("gone", T0 - 3600),
                state("kept", T0 + 5),
                StateRecord("never-ran", State.UNKNOWN, State.UNKNOWN),
            ],
        )
        return await s.prune(T0), await s.load_states()

    removed, loaded = run(store, body)
    assert removed == 1 and sorted(loaded) == ["kept", "never-ran"]


def test_reset_drops_the_connections_and_the_store_goes_on(store: Store) -> None:
    async def body(s: Store) -> tuple[bool, bool, list[StoredResult]]:
        await s.write([result("a", T0)], [])
        idle = await s.reset()  # nothing in progress: nothing that may have been stored
        await s.write([result("a", T0 + 1)], [])
        twice = await s.reset() or await s.reset()
        return idle, twice, await s.results("a", 0, T0 * 2)

    idle, twice, stored = run(store, body)
    assert not idle and not twice
    assert [r.started_at for r in stored] == pytest.approx([T0, T0 + 1])


def test_closing_twice_and_closing_a_store_never_opened_are_fine(make_store: Callable[[], Store]) -> None:
    async def main() -> None:
        unopened = make_store()
        await unopened.close()
        s = make_store()
        await s.open()
        await s.close()
        await s.close()

    asyncio.run(main())


def outbox_entry(receiver: str, check: str, at: float, **extra: object) -> OutboxEntry:
    values: dict[str, object] = {
        "id": entry_id(receiver, check, "firing", at),
        "receiver": receiver,
        "check_id": check,
        "kind": Kind.FIRING,
        "created_at": at,
        "not_before": at + 10,
        "next_attempt_at": at + 10,
        "event": {"name": check, "message": "boom ☃", "values": {"lag": 7.5}, "tags": ["audit"]},
        "root_cause": "database",
    }
    values.update(extra)
    return OutboxEntry(**values)  # type: ignore[arg-type]


def test_outbox_entries_round_trip_and_are_written_with_their_batch(store: Store) -> None:
    first = outbox_entry("chat", "a", T0)
    other = outbox_entry("pager", "b", T0 + 1, kind=Kind.RESOLVED, root_cause="")

    async def body(s: Store) -> tuple[list[OutboxEntry], list[OutboxEntry], list[OutboxEntry]]:
        await s.write([result("a", T0)], [StateChange("a", T0, State.UNKNOWN, State.FAILING)], [], [first, other])
        await s.write([result("a", T0)], [], [], [first])  # a retry of the batch: stored once
        everything = await s.outbox(0, T0 * 2)
        pending_a = await s.outbox(0, T0 * 2, status=Status.PENDING, check_id="a")
        return everything, pending_a, await s.outbox(T0 + 1, T0 * 2)

    everything, pending_a, later = run(store, body)
    assert everything == [first, other]
    assert pending_a == [first] and later == [other]


def test_a_pending_entry_never_replaces_one_sent_dead_or_folded(store: Store) -> None:
    pending = outbox_entry("chat", "a", T0)
    keyed = dataclasses.replace(pending, message_key="k1", attempts=1, next_attempt_at=T0 + 40, last_error="HTTP 503")
    sent = dataclasses.replace(keyed, status=Status.SENT, attempts=2, sent_at=T0 + 41, last_error="")
    dead = outbox_entry("chat", "b", T0, status=Status.DEAD, last_error="HTTP 400: bad")

    async def body(s: Store) -> list[OutboxEntry]:
        await s.write([], [], [], [pending, dead])
        await s.write([], [], [], [keyed])  # a retry scheduled: replaces the pending row
        await s.write([], [], [], [sent])
        await s.write([], [], [], [pending, outbox_entry("chat", "b", T0)])  # a stale pending copy of each
        return await s.outbox(0, T0 * 2)

    assert run(store, body) == [sent, dead]


def test_a_batch_that_fails_writes_no_outbox_entry(store: Store) -> None:
    async def body(s: Store) -> list[OutboxEntry]:
        broken = result("a", T0 + 2, message="\ud800")
        with pytest.raises((UnicodeEncodeError, StoreUnavailable)):
            await s.write([broken], [], [], [outbox_entry("chat", "a", T0)])
        return await s.outbox(0, T0 * 2)

    assert run(store, body) == []


def test_prune_removes_done_outbox_entries_and_keeps_pending_ones(store: Store) -> None:
    old_sent = outbox_entry("chat", "a", T0 - 3600, status=Status.SENT, sent_at=T0 - 3590)
    old_pending = outbox_entry("chat", "b", T0 - 3600)
    new_sent = outbox_entry("chat", "c", T0 + 5, status=Status.SENT, sent_at=T0 + 6)

    async def body(s: Store) -> list[OutboxEntry]:
        await s.write([], [], [], [old_sent, old_pending, new_sent])
        await s.prune(T0)
        return await s.outbox(0, T0 * 2)

    assert run(store, body) == [old_pending, new_sent]


def test_outbox_entry_is_read_by_id_and_a_done_one_is_reopened_atomically(store: Store) -> None:
    dead = outbox_entry("chat", "a", T0, status=Status.DEAD, attempts=3, last_error="HTTP 400: bad", message_key="k")
    sent = outbox_entry("chat", "b", T0, status=Status.SENT, attempts=1, sent_at=T0 + 11, message_key="k2")
    pending = outbox_entry("chat", "c", T0)

    Got = tuple[
        tuple[OutboxEntry | None, OutboxEntry | None],
        OutboxEntry | None,
        OutboxEntry | None,
        tuple[OutboxEntry | None, OutboxEntry | None],
        OutboxEntry | None,
        OutboxEntry | None,
    ]

    async def body(s: Store) -> Got:
        await s.write([], [], [], [dead, sent, pending])
        got = await s.outbox_entry(dead.id), await s.outbox_entry("nope")
        reopened = await s.reopen_outbox(dead.id, T0 + 60, "fresh")
        again = await s.reopen_outbox(dead.id, T0 + 61, "other")  # pending now: left alone
        refused = await s.reopen_outbox(pending.id, T0 + 60, "x"), await s.reopen_outbox("nope", T0, "x")
        resent = await s.reopen_outbox(sent.id, T0 + 60, "fresh2")
        assert reopened is not None
        delivered = dataclasses.replace(reopened, status=Status.SENT, attempts=1, sent_at=T0 + 62)
        await s.write([], [], [], [delivered])  # the sender's outcome replaces the pending copy
        return got, reopened, again, refused, resent, await s.outbox_entry(dead.id)

    (found, missing), reopened, again, refused, resent, after = run(store, body)
    assert found == dead and missing is None
    assert reopened == dataclasses.replace(
        dead, status=Status.PENDING, attempts=0, last_error="", next_attempt_at=T0 + 60, message_key="fresh"
    )
    assert again is None and refused == (None, None)
    assert resent == dataclasses.replace(
        sent, status=Status.PENDING, attempts=0, sent_at=None, next_attempt_at=T0 + 60, message_key="fresh2"
    )
    assert after is not None and (after.status, after.sent_at) == (Status.SENT, T0 + 62)


def silence(silence_id: str, starts_at: float, ends_at: float, **matchers: object) -> Silence:
    return Silence(
        id=silence_id,
        matchers=Matchers.of(matchers or {"check": "checks/db/*"}),
        reason="db failover ☃ 'quoted'",
        starts_at=starts_at,
        ends_at=ends_at,
        created_at=starts_at - 1,
        created_by="alice",
    )


def test_silences_round_trip_are_replaced_by_id_and_deleted(store: Store) -> None:
    first = silence("s1", T0, T0 + 3600, tags=["db", "audit"], labels={"team": "payments"}, severity="critical")
    second = silence("s2", T0 - 10, T0 + 60)
    longer = dataclasses.replace(second, ends_at=T0 + 7200, reason="longer")

    async def body(s: Store) -> tuple[list[Silence], ...]:
        await s.write_silence(first)
        await s.write_silence(second)
        both = await s.silences()
        await s.write_silence(longer)
        replaced = await s.silences()
        deleted = await s.delete_silence("s1"), await s.delete_silence("s1"), await s.delete_silence("nope")
        assert deleted == (True, False, False)
        return both, replaced, await s.silences()

    both, replaced, left = run(store, body)
    assert both == [second, first]  # by starts_at
    assert replaced == [longer, first]
    assert left == [longer]
    assert first.matchers.to_json() == {
        "tags": ["db", "audit"],
        "labels": {"team": "payments"},
        "severity": "critical",
    }


def test_silences_are_kept_across_opening_again_and_pruned_once_ended(make_store: Callable[[], Store]) -> None:
    ended = silence("old", T0 - 7200, T0 - 3600)
    holding = silence("new", T0 - 7200, T0 + 3600)

    async def first(s: Store) -> None:
        await s.write_silence(ended)
        await s.write_silence(holding)

    async def second(s: Store) -> tuple[list[Silence], list[Silence]]:
        kept = await s.silences()
        await s.prune(T0)
        return kept, await s.silences()

    run(make_store(), first)
    kept, pruned = run(make_store(), second)
    assert kept == [holding, ended] and pruned == [holding]  # same start: by id
