"""SQLite writes of many rows per statement (``execute_rows``): the same rows as
``executemany`` would write, in fewer statements.

Each case runs the same rows through ``executemany`` on one database and through
``execute_rows`` on another, and compares what the tables hold and how many rows
changed; small chunk sizes (and SQLite's own limit of bound parameters, lowered on
the connection) make the rows span several statements and a remainder.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from fraiseql_checks.result import Outcome
from fraiseql_checks.stores import StoredResult
from fraiseql_checks.stores import sqlite as sqlite_store
from fraiseql_checks.stores.sqlite import SQLiteStore, execute_rows

SCHEMA = """
CREATE TABLE seen (key TEXT PRIMARY KEY, value INTEGER);
CREATE TABLE sums (key TEXT PRIMARY KEY, total INTEGER, times INTEGER);
"""
INSERT_OR_IGNORE = "INSERT OR IGNORE INTO seen (key, value) VALUES (?, ?)"
UPSERT = """
INSERT INTO sums (key, total, times) VALUES (?, ?, 1)
ON CONFLICT (key) DO UPDATE SET total = total + excluded.total, times = times + 1
"""
# keys repeat within what one statement holds and across statements; the first of
# each key wins the INSERT OR IGNORE, and the upsert adds them up in order
ROWS = [(f"k{i % 7}", i) for i in range(23)]


def database() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    conn.executescript(SCHEMA)
    return conn


def contents(conn: sqlite3.Connection) -> tuple[list[tuple[object, ...]], ...]:
    return (
        conn.execute("SELECT * FROM seen ORDER BY key").fetchall(),
        conn.execute("SELECT * FROM sums ORDER BY key").fetchall(),
    )


@pytest.mark.parametrize(
    "per_statement, parameter_limit, statements_each",
    [
        (3, None, 12),  # 2 rows a statement (a power of two), 11 of them and one of 1
        (500, 5, 12),  # SQLite's limit: 2 rows of 2 parameters
        (500, None, 4),  # 23 rows as 16 + 4 + 2 + 1
    ],
)
def test_the_rows_written_are_those_executemany_writes(
    monkeypatch: pytest.MonkeyPatch, per_statement: int, parameter_limit: int | None, statements_each: int
) -> None:
    monkeypatch.setattr(sqlite_store, "ROWS_PER_STATEMENT", per_statement)
    reference, tested = database(), database()
    if parameter_limit is not None:  # two rows of two parameters per statement at most
        tested.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, parameter_limit)
    reference.executemany(INSERT_OR_IGNORE, ROWS)
    reference.executemany(UPSERT, ROWS)
    statements: list[str] = []
    tested.set_trace_callback(statements.append)
    before = tested.total_changes
    execute_rows(tested, INSERT_OR_IGNORE, ROWS)
    inserted = tested.total_changes - before
    execute_rows(tested, UPSERT, ROWS)
    assert contents(tested) == contents(reference)
    assert inserted == 7  # what the store counts to know whether a row was there already
    assert len([s for s in statements if s.lstrip().startswith("INSERT")]) == 2 * statements_each


def test_an_empty_list_writes_nothing_and_what_it_cannot_write_as_executemany_would_is_refused() -> None:
    conn = database()
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    execute_rows(conn, INSERT_OR_IGNORE, [])
    assert statements == []
    with pytest.raises(ValueError, match="not an INSERT of one VALUES group"):
        execute_rows(conn, "INSERT INTO seen SELECT 'a', 1", [("x",)])
    # a call in the group: its parentheses would cut the group short from two rows on
    with pytest.raises(ValueError, match="not an INSERT of one VALUES group"):
        execute_rows(conn, "INSERT INTO seen (key, value) VALUES (lower(?), ?)", [("A", 1), ("B", 2)])
    # rows of the wrong width would shift into each other's columns
    with pytest.raises(ValueError, match="rows of 2 values expected"):
        execute_rows(conn, INSERT_OR_IGNORE, [("a", 1, 2), ("b",)])
    assert statements == []


def test_a_batch_over_many_statements_stores_each_result_once_and_rolls_it_up_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_store, "ROWS_PER_STATEMENT", 64)
    start = 1_790_000_000.0 - 1_790_000_000 % 3600  # an hour's start: the runs span three hours
    results = [
        StoredResult(f"c{i % 50}", start + 7 * i, 0.01, Outcome.PASSED if i % 3 else Outcome.FAILED, interval_s=30.0)
        for i in range(1234)
    ]

    async def main() -> tuple[int, list[tuple[object, ...]]]:
        store = SQLiteStore(tmp_path / "results.db")
        await store.open()
        try:
            # 834 new ones (13 statements of 64 and one of 2), then the whole batch, of which
            # they are stored already (the row by row way)
            await store.write(results[400:], [])
            await store.write(results, [])
            conn = sqlite3.connect(tmp_path / "results.db")
            try:
                count = conn.execute("SELECT count(*) FROM results").fetchone()[0]
                runs = conn.execute(
                    "SELECT check_id, sum(good_runs), sum(bad_runs) FROM slo_rollups GROUP BY check_id ORDER BY check_id"
                ).fetchall()
            finally:
                conn.close()
            return count, runs
        finally:
            await store.close()

    count, runs = asyncio.run(main())
    assert count == 1234
    expected: dict[str, list[int]] = {}
    for r in results:
        expected.setdefault(r.check_id, [0, 0])[r.outcome is not Outcome.PASSED] += 1
    assert runs == sorted((check, good, bad) for check, (good, bad) in expected.items())
