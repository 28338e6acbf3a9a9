"""The contract every result store keeps, run against SQLite and a real PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

from fraiseql_checks.result import Outcome
from fraiseql_checks.stores import Store, StoredResult
from fraiseql_checks.watch.state import State, StateChange

T = TypeVar("T")
T0 = 1_750_000_000.0


def run(store: Store, body: Callable[[Store], Awaitable[T]]) -> T:
    async def main() -> T:
        await store.open()
        try:
            return await body(store)
        finally:
            await store.close()

    return asyncio.run(main())


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
    )


def same(a: StoredResult, b: StoredResult) -> bool:
    """Equal, with times to the microsecond (what PostgreSQL's timestamptz keeps)."""
    return a.started_at == pytest.approx(b.started_at, abs=1e-6) and a.__dict__ | {"started_at": 0} == b.__dict__ | {
        "started_at": 0
    }


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
