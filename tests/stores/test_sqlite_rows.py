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
import time
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


@pytest.mark.parametrize("per_statement, parameter_limit", [(3, None), (500, 5), (500, None)])
def test_the_rows_written_are_those_executemany_writes(
    monkeypatch: pytest.MonkeyPatch, per_statement: int, parameter_limit: int | None
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
    per = min(per_statement, (parameter_limit or 10**6) // 2)
    expected = 2 * -(-len(ROWS) // per)
    assert len([s for s in statements if s.lstrip().startswith("INSERT")]) == expected


def test_an_empty_list_writes_nothing_and_a_statement_without_one_values_group_is_refused() -> None:
    conn = database()
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    execute_rows(conn, INSERT_OR_IGNORE, [])
    assert statements == []
    with pytest.raises(ValueError, match="not an INSERT of one VALUES group"):
        execute_rows(conn, "INSERT INTO seen SELECT 'a', 1", [("x",)])


def test_a_batch_over_many_statements_stores_each_result_once_and_rolls_it_up_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_store, "ROWS_PER_STATEMENT", 100)
    start = time.time() - 3600
    results = [
        StoredResult(f"c{i % 50}", start + i, 0.01, Outcome.PASSED if i % 3 else Outcome.FAILED, interval_s=30.0)
        for i in range(1234)
    ]

    async def main() -> tuple[int, list[tuple[object, ...]]]:
        store = SQLiteStore(tmp_path / "results.db")
        await store.open()
        try:
            await store.write(results[:400], [])  # some are stored already when the whole batch comes
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
