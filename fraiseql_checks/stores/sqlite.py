"""The embedded result store: one SQLite file (default ``.fraiseql-checks/results.db``).

WAL journal, so readers never wait for the writer; batches of rows in one
transaction; all SQLite work on one thread of its own, with its own connection,
so the event loop never waits for the disk. A watcher's store (``writer_process``)
writes in a process of its own instead (``sqlite_writer``: the thread had to take the
GIL back from a busy event loop after every call into SQLite), and reads on the thread.
Any value of ``store`` that is not a URL is a path to this file, relative to the root
directory; ``sqlite:///path`` works too.

A call stuck on that thread (a hung disk, a lock held longer than the busy
timeout allows) cannot be taken back: ``reset`` leaves the thread to finish it
alone and opens a fresh connection on a fresh thread. The write it gave up on
checks before committing and rolls back instead, so only a write already
committing when it was given up on may still land.

Hourly and daily SLO rollups (tables ``slo_rollups`` and ``slo_daily_rollups``) are
kept by each write, in its transaction: the rows ``INSERT OR IGNORE`` really inserted
are summed per check and hour (and day) and each sum is added once, so a batch
written twice counts once. (Triggers did it until schema 7: SQLite has only row
triggers, which made three upserts of every result, twice the cost of the write.)
"""

from __future__ import annotations

import functools
import queue
import threading
import urllib.parse
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from fraiseql_checks.config import UsageError
from fraiseql_checks.hookspec import hookimpl
from fraiseql_checks.outbox import OutboxEntry, Status
from fraiseql_checks.result import Outcome
from fraiseql_checks.silences import Silence
from fraiseql_checks.stores import SLITotals, StateChange, StateRecord, StoredResult, StoreUnavailable, values_json
from fraiseql_checks.stores.rows import (
    OUTBOX_COLUMNS,
    SILENCE_COLUMNS,
    change_of,
    change_row,
    outbox_of,
    outbox_row,
    result_of,
    silence_of,
    silence_row,
    state_fields,
    state_json,
    state_of,
)
from fraiseql_checks.stores.sli import DAY, HOUR, SLIPlan, day_of, hour_of, plan_windows, totals_off_loop

if TYPE_CHECKING:
    import asyncio
    import sqlite3

    from fraiseql_checks.config import Config
    from fraiseql_checks.stores.sqlite_writer import WriterProcess

T = TypeVar("T")

#: Migrations by number; each runs once, in order, recorded in ``user_version``.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE results (
        check_id TEXT NOT NULL,
        started_at REAL NOT NULL,
        kind TEXT NOT NULL,
        duration_s REAL NOT NULL,
        outcome TEXT NOT NULL,
        timed_out INTEGER NOT NULL,
        message TEXT NOT NULL,
        trace_id TEXT NOT NULL,
        recorded_values TEXT NOT NULL,
        PRIMARY KEY (check_id, started_at)
    ) WITHOUT ROWID;
    CREATE INDEX results_time ON results (started_at);
    CREATE TABLE state_changes (
        check_id TEXT NOT NULL,
        at REAL NOT NULL,
        previous TEXT NOT NULL,
        state TEXT NOT NULL,
        silenced INTEGER NOT NULL,
        reason TEXT NOT NULL,
        message TEXT NOT NULL,
        trace_id TEXT NOT NULL,
        consecutive_failures INTEGER NOT NULL,
        PRIMARY KEY (check_id, at, state)
    );
    CREATE INDEX state_changes_time ON state_changes (at);
    """,
    # 2: SLO rollups, kept by a trigger, and filled from the results stored before
    # (which count as runs of 0 seconds: their interval is unknown). What counts:
    # check runs not silenced; passed is good, failed or errored is bad. The bucket
    # is floor(started_at / 3600) * 3600, exact at the boundaries.
    """
    ALTER TABLE results ADD COLUMN interval_s REAL NOT NULL DEFAULT 0;
    ALTER TABLE results ADD COLUMN silenced INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE slo_rollups (
        check_id TEXT NOT NULL,
        bucket INTEGER NOT NULL,
        good_s REAL NOT NULL,
        bad_s REAL NOT NULL,
        good_runs INTEGER NOT NULL,
        bad_runs INTEGER NOT NULL,
        PRIMARY KEY (check_id, bucket)
    ) WITHOUT ROWID;
    CREATE INDEX slo_rollups_time ON slo_rollups (bucket);
    INSERT INTO slo_rollups (check_id, bucket, good_s, bad_s, good_runs, bad_runs)
    SELECT check_id,
        (CAST(started_at / 3600 AS INTEGER) - (CAST(started_at / 3600 AS INTEGER) * 3600 > started_at)) * 3600,
        total(CASE WHEN outcome = 'passed' THEN interval_s END),
        total(CASE WHEN outcome = 'passed' THEN 0 ELSE interval_s END),
        sum(outcome = 'passed'),
        sum(outcome <> 'passed')
    FROM results
    WHERE kind = 'check' AND silenced = 0 AND outcome IN ('passed', 'failed', 'error')
    GROUP BY 1, 2;
    CREATE TRIGGER results_slo_rollup AFTER INSERT ON results
    WHEN NEW.kind = 'check' AND NEW.silenced = 0 AND NEW.outcome IN ('passed', 'failed', 'error')
    BEGIN
        INSERT INTO slo_rollups (check_id, bucket, good_s, bad_s, good_runs, bad_runs)
        VALUES (
            NEW.check_id,
            (CAST(NEW.started_at / 3600 AS INTEGER)
                - (CAST(NEW.started_at / 3600 AS INTEGER) * 3600 > NEW.started_at)) * 3600,
            CASE WHEN NEW.outcome = 'passed' THEN NEW.interval_s ELSE 0 END,
            CASE WHEN NEW.outcome = 'passed' THEN 0 ELSE NEW.interval_s END,
            NEW.outcome = 'passed',
            NEW.outcome <> 'passed'
        )
        ON CONFLICT (check_id, bucket) DO UPDATE SET
            good_s = good_s + excluded.good_s,
            bad_s = bad_s + excluded.bad_s,
            good_runs = good_runs + excluded.good_runs,
            bad_runs = bad_runs + excluded.bad_runs;
    END;
    """,
    # 3: each check's state machine, one row per check (``stores.StateRecord``); the
    # time lists are JSON arrays of seconds since the epoch.
    """
    CREATE TABLE check_states (
        check_id TEXT PRIMARY KEY,
        base TEXT NOT NULL,
        state TEXT NOT NULL,
        consecutive_failures INTEGER NOT NULL,
        consecutive_successes INTEGER NOT NULL,
        failures TEXT NOT NULL,
        changes TEXT NOT NULL,
        since REAL,
        updated_at REAL
    ) WITHOUT ROWID;
    """,
    # 4: the notification outbox (``outbox.OutboxEntry``), written with the state
    # changes that made its entries; the event is JSON.
    """
    CREATE TABLE outbox (
        id TEXT PRIMARY KEY,
        receiver TEXT NOT NULL,
        check_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        created_at REAL NOT NULL,
        not_before REAL NOT NULL,
        event TEXT NOT NULL,
        root_cause TEXT NOT NULL,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        next_attempt_at REAL NOT NULL,
        last_error TEXT NOT NULL,
        sent_at REAL,
        message_key TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX outbox_time ON outbox (created_at);
    CREATE INDEX outbox_status ON outbox (status, created_at);
    """,
    # 5: silences made through the API (``silences.Silence``); the matchers are JSON.
    """
    CREATE TABLE silences (
        id TEXT PRIMARY KEY,
        matchers TEXT NOT NULL,
        reason TEXT NOT NULL,
        starts_at REAL NOT NULL,
        ends_at REAL NOT NULL,
        created_at REAL NOT NULL,
        created_by TEXT NOT NULL
    ) WITHOUT ROWID;
    """,
    # 6: daily SLO rollups (per check and UTC day), kept by a trigger as the hourly ones
    # are, and filled from the hourly ones: 30 days are 30 rows per check, not 720. The
    # bucket is the start of the day of the run's hourly bucket.
    """
    CREATE TABLE slo_daily_rollups (
        check_id TEXT NOT NULL,
        bucket INTEGER NOT NULL,
        good_s REAL NOT NULL,
        bad_s REAL NOT NULL,
        good_runs INTEGER NOT NULL,
        bad_runs INTEGER NOT NULL,
        PRIMARY KEY (check_id, bucket)
    ) WITHOUT ROWID;
    CREATE INDEX slo_daily_rollups_time ON slo_daily_rollups (bucket);
    INSERT INTO slo_daily_rollups (check_id, bucket, good_s, bad_s, good_runs, bad_runs)
    SELECT check_id, (bucket / 86400 - (bucket % 86400 < 0)) * 86400,
        total(good_s), total(bad_s), sum(good_runs), sum(bad_runs)
    FROM slo_rollups
    GROUP BY 1, 2;
    CREATE TRIGGER results_slo_daily_rollup AFTER INSERT ON results
    WHEN NEW.kind = 'check' AND NEW.silenced = 0 AND NEW.outcome IN ('passed', 'failed', 'error')
    BEGIN
        INSERT INTO slo_daily_rollups (check_id, bucket, good_s, bad_s, good_runs, bad_runs)
        VALUES (
            NEW.check_id,
            ((CAST(NEW.started_at / 3600 AS INTEGER)
                - (CAST(NEW.started_at / 3600 AS INTEGER) * 3600 > NEW.started_at)) * 3600 / 86400
             - ((CAST(NEW.started_at / 3600 AS INTEGER)
                - (CAST(NEW.started_at / 3600 AS INTEGER) * 3600 > NEW.started_at)) * 3600 % 86400 < 0)) * 86400,
            CASE WHEN NEW.outcome = 'passed' THEN NEW.interval_s ELSE 0 END,
            CASE WHEN NEW.outcome = 'passed' THEN 0 ELSE NEW.interval_s END,
            NEW.outcome = 'passed',
            NEW.outcome <> 'passed'
        )
        ON CONFLICT (check_id, bucket) DO UPDATE SET
            good_s = good_s + excluded.good_s,
            bad_s = bad_s + excluded.bad_s,
            good_runs = good_runs + excluded.good_runs,
            bad_runs = bad_runs + excluded.bad_runs;
    END;
    """,
    # 7: the rollups are kept by the writes (``_insert_results``, ``rollup_sums``), a sum per
    # check and hour (and day) of each batch, not by row triggers (three upserts per result).
    """
    DROP TRIGGER results_slo_rollup;
    DROP TRIGGER results_slo_daily_rollup;
    """,
)
_RESULT_COLUMNS = (
    "check_id, started_at, duration_s, outcome, message, trace_id, recorded_values, timed_out, kind,"
    " interval_s, silenced"
)
_CHANGE_COLUMNS = "check_id, at, previous, state, silenced, reason, message, trace_id, consecutive_failures"
_STATE_COLUMNS = (
    "check_id, base, state, consecutive_failures, consecutive_successes, failures, changes, since, updated_at"
)
_UPSERT_STATE = f"""
INSERT INTO check_states ({_STATE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (check_id) DO UPDATE SET
    base = excluded.base,
    state = excluded.state,
    consecutive_failures = excluded.consecutive_failures,
    consecutive_successes = excluded.consecutive_successes,
    failures = excluded.failures,
    changes = excluded.changes,
    since = excluded.since,
    updated_at = excluded.updated_at
"""
_INSERT_RESULT = f"INSERT OR IGNORE INTO results ({_RESULT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_ADD_TO_ROLLUP = """
INSERT INTO {table} (check_id, bucket, good_s, bad_s, good_runs, bad_runs) VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (check_id, bucket) DO UPDATE SET
    good_s = good_s + excluded.good_s,
    bad_s = bad_s + excluded.bad_s,
    good_runs = good_runs + excluded.good_runs,
    bad_runs = bad_runs + excluded.bad_runs
"""
#: The outcomes an SLO counts (passed is good, failed or errored is bad).
_SLO_OUTCOMES = frozenset({Outcome.PASSED, Outcome.FAILED, Outcome.ERROR})


#: At most this many rows per statement of ``execute_rows`` (a power of two; fewer when
#: SQLite's limit of bound parameters is lower than this many rows' worth).
ROWS_PER_STATEMENT = 128


def execute_rows(conn: sqlite3.Connection, sql: str, rows: Sequence[Sequence[Any]]) -> None:
    """``conn.executemany(sql, rows)`` for an ``INSERT`` of one ``VALUES (?, …)`` group
    (placeholders and plain literals only), written as statements of many rows each
    (``VALUES (…), (…), …``).

    ``executemany`` steps the statement once per row, and Python's sqlite3 lets go of
    the GIL around every step: the store's thread writing a batch of 5,000 results (about
    15,000 rows with the rollups) had to take the GIL back from a busy event loop as many
    times, and each time can take long (docs/performance.md, "The store's thread starved
    of the GIL"). A statement of many rows is one step. The same
    rows go in, in the same order, with the same conflict handling (rows of one statement
    that conflict with each other are handled in order, as separate statements would be).

    The rows go in statements of ``ROWS_PER_STATEMENT`` and the rest in statements of
    powers of two: a handful of sizes per statement, because sqlite3 keeps every
    statement it prepared (128 of them), and one of 500 rows holds most of a megabyte."""
    import sqlite3

    if not rows:
        return
    head, group, tail = _values_group(sql)
    width = group.count("?")
    per = min(ROWS_PER_STATEMENT, conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // width)
    per = 1 << max(per, 1).bit_length() - 1  # a power of two
    start, total = 0, len(rows)
    while start < total:
        count = min(per, 1 << (total - start).bit_length() - 1)
        chunk = rows[start : start + count]
        if any(len(row) != width for row in chunk):
            raise ValueError(f"rows of {width} values expected for {sql.split('(')[0].strip()!r}")
        conn.execute(_many_rows(head, group, tail, count), [value for row in chunk for value in row])
        start += count


@functools.lru_cache(maxsize=64)
def _values_group(sql: str) -> tuple[str, str, str]:
    head, found, rest = sql.partition("VALUES (")
    group, _, tail = rest.partition(")")
    if not found or "(" in group:
        raise ValueError(f"not an INSERT of one VALUES group of placeholders and literals: {sql!r}")
    return head + "VALUES ", f"({group})", tail


@functools.lru_cache(maxsize=256)
def _many_rows(head: str, group: str, tail: str, count: int) -> str:
    return head + ", ".join([group] * count) + tail


#: ``Outcome`` values an SLO counts, as stored (``_SLO_OUTCOMES``).
_SLO_OUTCOME_VALUES = frozenset(o.value for o in _SLO_OUTCOMES)
_PASSED = Outcome.PASSED.value


def rollup_sums(rows: Sequence[Sequence[Any]]) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The hourly and the daily rollup rows that the result ``rows`` (as ``batch_of``
    makes them) add: check runs not silenced, summed per check and bucket (``sli.hour_of``,
    ``sli.day_of``: exact at the boundaries, as migration 2 computed them in SQL)."""
    hours: dict[tuple[str, int], list[Any]] = {}
    for check_id, started_at, _d, outcome, _m, _t, _v, _o, kind, interval_s, silenced in rows:
        if kind != "check" or silenced or outcome not in _SLO_OUTCOME_VALUES:
            continue
        key = (check_id, hour_of(started_at))
        sums = hours.get(key)
        if sums is None:
            sums = hours[key] = [0.0, 0.0, 0, 0]
        if outcome == _PASSED:
            sums[0] += interval_s
            sums[2] += 1
        else:
            sums[1] += interval_s
            sums[3] += 1
    days: dict[tuple[str, int], list[Any]] = {}
    for (check_id, bucket), (good_s, bad_s, good, bad) in hours.items():
        sums = days.setdefault((check_id, day_of(bucket)), [0.0, 0.0, 0, 0])
        sums[0] += good_s
        sums[1] += bad_s
        sums[2] += good
        sums[3] += bad
    return (
        [(*key, *sums) for key, sums in hours.items()],
        [(*key, *sums) for key, sums in days.items()],
    )


#: One write as plain rows (tuples of str, float and int, and each result's recorded
#: values as a dict, each state's time lists as tuples: cheap to pickle, made JSON where
#: the rows are written): results, state changes, check states and outbox entries, in the
#: order of their columns.
Batch = tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]


def batch_of(
    results: Sequence[StoredResult],
    changes: Sequence[StateChange],
    states: Sequence[StateRecord],
    outbox: Sequence[OutboxEntry],
) -> Batch:
    """A write's rows; of the states and outbox entries, the newest of each id. On the
    event loop in a watcher (``sqlite_writer.encode_write`` builds them a slice at a time):
    what costs (JSON, sorting) is left to ``write_batch``."""
    return result_rows(results), change_rows(changes), state_rows(newest_states(states)), outbox_rows(outbox)


def result_rows(results: Iterable[StoredResult]) -> list[tuple[Any, ...]]:
    """The results' rows, their recorded values still dicts (JSON in ``_insert_results``)."""
    return [
        (
            r.check_id,
            r.started_at,
            r.duration_s,
            r.outcome.value,
            r.message,
            r.trace_id,
            r.values,
            int(r.timed_out),
            r.kind,
            r.interval_s,
            int(r.silenced),
        )
        for r in results
    ]


def state_rows(states: Iterable[StateRecord]) -> list[tuple[Any, ...]]:
    """The states' rows, their time lists still tuples (JSON in ``write_batch``)."""
    return [state_fields(record) for record in states]


def newest_states(states: Iterable[StateRecord]) -> list[StateRecord]:
    """Of the states of each check, the newest (the last given)."""
    return list({record.check_id: record for record in states}.values())


def change_rows(changes: Iterable[StateChange]) -> list[tuple[Any, ...]]:
    return [change_row(change) for change in changes]


def outbox_rows(outbox: Iterable[OutboxEntry]) -> list[tuple[Any, ...]]:
    """The newest of each outbox entry, by id."""
    newest = {entry.id: entry for entry in outbox}
    return [outbox_row(newest[i]) for i in sorted(newest)]


def write_batch(conn: sqlite3.Connection, batch: Batch, commit: Callable[[sqlite3.Connection], None]) -> None:
    """``batch`` in one transaction, committed by ``commit(conn)`` (which may refuse,
    raising: then it rolls back). On the store's thread, or in its writer process."""
    results, changes, states, outbox = batch
    conn.execute("BEGIN IMMEDIATE")
    try:
        if results:
            _insert_results(conn, results)
        if changes:
            execute_rows(
                conn,
                f"INSERT OR IGNORE INTO state_changes ({_CHANGE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                changes,
            )
        if states:
            execute_rows(conn, _UPSERT_STATE, sorted(state_json(fields) for fields in states))
        if outbox:
            execute_rows(conn, _UPSERT_OUTBOX, outbox)
        commit(conn)
    except BaseException:
        if conn.in_transaction:  # an interrupted statement rolls back by itself
            conn.execute("ROLLBACK")
        raise


def _insert_results(conn: sqlite3.Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """Insert the result ``rows`` (those stored already are left) and add the inserted ones to the rollups."""
    rows = [(*row[:6], values_json(row[6]), *row[7:]) for row in rows]
    conn.execute("SAVEPOINT results")
    before = conn.total_changes
    execute_rows(conn, _INSERT_RESULT, rows)
    inserted = rows
    if conn.total_changes - before != len(rows):  # some were stored already: which, row by row
        conn.execute("ROLLBACK TO results")
        inserted = [row for row in rows if conn.execute(_INSERT_RESULT, row).rowcount]
    conn.execute("RELEASE results")
    hours, days = rollup_sums(inserted)
    if hours:
        execute_rows(conn, _ADD_TO_ROLLUP.format(table="slo_rollups"), hours)
        execute_rows(conn, _ADD_TO_ROLLUP.format(table="slo_daily_rollups"), days)


# A pending entry never replaces one that is done: a restart that makes an entry
# again (its id is stable) must not send it twice.
_UPSERT_OUTBOX = f"""
INSERT INTO outbox ({OUTBOX_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET
    status = excluded.status,
    attempts = excluded.attempts,
    next_attempt_at = excluded.next_attempt_at,
    last_error = excluded.last_error,
    sent_at = excluded.sent_at,
    message_key = excluded.message_key,
    not_before = excluded.not_before
WHERE outbox.status = 'pending'
"""
# sli_totals: the checks and the segments (disjoint ranges, see ``stores.SLIPlan``)
# go to temporary tables, whose primary keys order the outer loops: each check's rows
# of a segment are read by one seek into the primary key, (check_id, bucket) or
# (check_id, started_at), and the groups come in order, without a sort. Raw results
# count as the trigger counts them.
_SLI_TABLES = """
CREATE TEMP TABLE sli_checks (id TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TEMP TABLE sli_hours (n INTEGER PRIMARY KEY, since INTEGER NOT NULL, until INTEGER NOT NULL);
CREATE TEMP TABLE sli_raw (n INTEGER PRIMARY KEY, since REAL NOT NULL, until REAL NOT NULL);
CREATE TEMP TABLE sli_days (n INTEGER PRIMARY KEY, since INTEGER NOT NULL, until INTEGER NOT NULL);
"""
_SLI_HOURS = """
SELECT s.n, i.id, total(r.good_s), total(r.bad_s), total(r.good_runs), total(r.bad_runs)
FROM temp.sli_hours AS s CROSS JOIN temp.sli_checks AS i CROSS JOIN slo_rollups AS r
WHERE r.check_id = i.id AND r.bucket >= s.since AND r.bucket < s.until
GROUP BY s.n, i.id
"""
_SLI_DAYS = """
SELECT s.n, i.id, total(r.good_s), total(r.bad_s), total(r.good_runs), total(r.bad_runs)
FROM temp.sli_days AS s CROSS JOIN temp.sli_checks AS i CROSS JOIN slo_daily_rollups AS r
WHERE r.check_id = i.id AND r.bucket >= s.since AND r.bucket < s.until
GROUP BY s.n, i.id
"""
_SLI_RAW = """
SELECT s.n, i.id,
    total(CASE WHEN r.outcome = 'passed' THEN r.interval_s END),
    total(CASE WHEN r.outcome = 'passed' THEN 0 ELSE r.interval_s END),
    total(r.outcome = 'passed'),
    total(r.outcome <> 'passed')
FROM temp.sli_raw AS s CROSS JOIN temp.sli_checks AS i CROSS JOIN results AS r
WHERE r.check_id = i.id AND r.started_at >= s.since AND r.started_at < s.until
    AND r.kind = 'check' AND r.silenced = 0 AND r.outcome IN ('passed', 'failed', 'error')
GROUP BY s.n, i.id
"""


def _path_of(url: str, rootdir: Path) -> Path | None:
    """The database file ``url`` names, or ``None`` if it is another kind of URL."""
    if url.startswith("sqlite:"):
        path = urllib.parse.urlsplit(url).path
        # sqlite:///relative/file.db and sqlite:////absolute/file.db, as SQLAlchemy spells them
        path = path[1:] if path.startswith("/") else path
        if not path:
            raise UsageError(f"store {url!r}: no file path after sqlite://")
        return rootdir / path
    if "://" in url:
        return None
    return rootdir / url


class _GaveUp(Exception):
    """``reset`` gave up on this write before it committed: it rolled back instead."""


class _Lane:
    """One daemon thread with one connection, running the store's calls in order.

    A daemon, unlike ``concurrent.futures``' threads: a call stuck on a hung disk keeps
    neither the event loop nor the process from exiting.
    """

    def __init__(self, store: SQLiteStore) -> None:
        self._store = store
        self._jobs: queue.SimpleQueue[tuple[Callable[..., Any], tuple[Any, ...], asyncio.Future[Any]] | None] = (
            queue.SimpleQueue()
        )
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        #: ``reset`` gave up on this lane: the write it runs rolls back, what is queued fails.
        self._abandoned = False
        #: A write on this lane asked to commit and has not returned yet.
        self._committing = False
        threading.Thread(target=self._work, name=f"fraiseql-check-sqlite {store.path}", daemon=True).start()

    def submit(self, func: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """Queue ``func(lane, *args)`` for the lane's thread; its future."""
        import asyncio

        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._jobs.put((func, args, future))
        return future

    async def call(self, func: Callable[..., T], *args: Any) -> T:
        """``func(lane, *args)`` on the lane's thread; cancelling the caller leaves it running."""
        return await self.submit(func, *args)

    def stop(self) -> None:
        """The thread closes the connection and exits once what is queued has run."""
        self._jobs.put(None)

    async def close(self, timeout: float) -> None:
        """Close the connection and end the thread once what is queued has run; after
        ``timeout`` seconds, give up on a thread stuck in a call instead."""
        import asyncio

        closing = self.submit(_Lane._disconnect)
        self.stop()
        done, _ = await asyncio.wait({closing}, timeout=timeout)
        if not done:
            closing.cancel()
            self.abandon()
        elif not closing.cancelled():
            closing.exception()  # retrieved: a lane given up on before refuses, nothing to report

    def abandon(self) -> bool:
        """Give up on the lane: whether a write on it was already committing. What is
        queued behind the call it runs fails now rather than wait for that call."""
        with self._lock:
            self._abandoned = True
            committing = self._committing
            if self._conn is not None and not committing:
                self._conn.interrupt()  # a long statement ends now; the check before COMMIT does the rest
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                future = job[2]
                future.get_loop().call_soon_threadsafe(_deliver, future, None, _reset_error())
        self.stop()
        return committing

    # -- on the lane's thread ----------------------------------------------------------

    def db(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = self._store._connect()
            with self._lock:
                self._conn = conn
        return self._conn

    def _disconnect(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def commit(self, conn: sqlite3.Connection) -> None:
        """COMMIT, unless the lane was given up on: then ``_GaveUp`` (the caller rolls back)."""
        with self._lock:
            if self._abandoned:
                raise _GaveUp("the store was reset during the write")
            self._committing = True
        try:
            conn.execute("COMMIT")
        finally:
            with self._lock:
                self._committing = False

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                break
            func, args, future = job
            value: Any = None
            error: BaseException | None = None
            if self._abandoned:
                error = _reset_error()
            else:
                try:
                    value = func(self, *args)
                except BaseException as exc:  # delivered to the caller
                    error = exc
            try:
                future.get_loop().call_soon_threadsafe(_deliver, future, value, error)
            except RuntimeError:  # the loop is closed: nobody waits any more
                pass
        self._disconnect()


def _reset_error() -> StoreUnavailable:
    return StoreUnavailable("the store's connection was reset: a call got no answer")


def _deliver(future: asyncio.Future[Any], value: Any, error: BaseException | None) -> None:
    if future.done():  # the caller stopped waiting
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)


def _locked(exc: sqlite3.Error) -> bool:
    """Another connection holds the lock (past the busy timeout): it will let go, retry later."""
    import sqlite3

    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    return code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


class SQLiteStore:
    """Results, state changes and check states in one SQLite file."""

    def __init__(self, path: Path, *, busy_timeout: float = 5.0, writer_process: bool = False) -> None:
        self.path = path
        self.url = str(path)
        #: How long a statement waits for a lock another connection holds before it
        #: fails with "database is locked" (a ``StoreUnavailable``: the writer retries).
        self.busy_timeout = busy_timeout
        #: ``write`` runs in a process of its own (``sqlite_writer``; watch mode), driven
        #: from the event loop; the store's thread makes the rest of the calls.
        self.writer_process = writer_process
        self._lane: _Lane | None = None
        self._writer: WriterProcess | None = None

    async def _call(self, func: Callable[..., T], *args: Any) -> T:
        if self._lane is None:
            self._lane = _Lane(self)
        return await self._lane.call(func, *args)

    # -- on the store's thread -----------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        import sqlite3

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(f"PRAGMA busy_timeout={round(self.busy_timeout * 1000)}")
            # Writes go to as many places in the table as there are checks (and the
            # rollups' upserts to as many more): the default 2 MB cache thrashes.
            conn.execute("PRAGMA cache_size=-16384")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > len(MIGRATIONS):  # its rollups may be kept in a way this version does not know
                conn.close()
                raise UsageError(
                    f"the result store {self.path} has schema {version}, from a newer fraiseql-checks"
                    f" (this one knows {len(MIGRATIONS)}): upgrade fraiseql-checks, or give it another store"
                )
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                conn.executescript(f"BEGIN IMMEDIATE; {script}; PRAGMA user_version={number}; COMMIT;")
            conn.execute("PRAGMA temp_store=MEMORY")
            conn.executescript(_SLI_TABLES)
        except sqlite3.Error as exc:
            if _locked(exc):
                raise StoreUnavailable(f"{type(exc).__name__}: {exc}") from exc
            raise UsageError(f"cannot open the result store {self.path}: {exc}") from None
        except OSError as exc:
            raise UsageError(f"cannot open the result store {self.path}: {exc}") from None
        return conn

    def _open(self, lane: _Lane) -> None:
        lane.db()

    def _write(
        self,
        lane: _Lane,
        results: Sequence[StoredResult],
        changes: Sequence[StateChange],
        states: Sequence[StateRecord],
        outbox: Sequence[OutboxEntry],
    ) -> None:
        import sqlite3

        batch = batch_of(results, changes, states, outbox)
        try:
            write_batch(lane.db(), batch, lane.commit)
        except sqlite3.Error as exc:  # disk full, locked for too long, file removed, interrupted
            raise StoreUnavailable(f"{type(exc).__name__}: {exc}") from exc

    def _query(self, lane: _Lane, sql: str, params: tuple[Any, ...]) -> list[Any]:
        import sqlite3

        try:
            return lane.db().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"{type(exc).__name__}: {exc}") from exc

    def _change(self, lane: _Lane, sql: str, params: tuple[Any, ...]) -> int:
        """One statement that writes (atomic by itself); how many rows it touched."""
        import sqlite3

        try:
            return int(lane.db().execute(sql, params).rowcount)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"{type(exc).__name__}: {exc}") from exc

    def _sli_totals(
        self, lane: _Lane, check_ids: Sequence[str], plan: SLIPlan
    ) -> tuple[list[Any], list[Any], list[Any]]:
        import sqlite3

        conn = lane.db()
        try:
            # One read transaction: both statements see the same data. Writing the
            # temporary tables locks nothing; the rollback empties them.
            conn.execute("BEGIN")
            try:
                # many rows per statement, as the writes (``execute_rows``)
                execute_rows(conn, "INSERT OR IGNORE INTO temp.sli_checks VALUES (?)", [(c,) for c in check_ids])
                for table, spans in (("sli_hours", plan.hours), ("sli_raw", plan.raw), ("sli_days", plan.days)):
                    numbered = [(n, a, b) for n, (a, b) in enumerate(spans)]
                    execute_rows(conn, f"INSERT INTO temp.{table} VALUES (?, ?, ?)", numbered)
                days = conn.execute(_SLI_DAYS).fetchall() if plan.days else []
                hours = conn.execute(_SLI_HOURS).fetchall() if plan.hours else []
                raw = conn.execute(_SLI_RAW).fetchall() if plan.raw else []
            finally:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"{type(exc).__name__}: {exc}") from exc
        return days, hours, raw

    def _prune(self, lane: _Lane, before: float, rollups_before: float | None) -> int:
        import sqlite3

        conn = lane.db()
        try:
            removed = conn.execute("DELETE FROM results WHERE started_at < ?", (before,)).rowcount
            removed += conn.execute("DELETE FROM state_changes WHERE at < ?", (before,)).rowcount
            removed += conn.execute("DELETE FROM check_states WHERE updated_at < ?", (before,)).rowcount
            sql = "DELETE FROM outbox WHERE created_at < ? AND status <> 'pending'"
            removed += conn.execute(sql, (before,)).rowcount
            removed += conn.execute("DELETE FROM silences WHERE ends_at < ?", (before,)).rowcount
            if rollups_before is not None:
                sql = "DELETE FROM slo_rollups WHERE bucket <= ?"
                removed += conn.execute(sql, (rollups_before - HOUR,)).rowcount
                sql = "DELETE FROM slo_daily_rollups WHERE bucket <= ?"
                removed += conn.execute(sql, (rollups_before - DAY,)).rowcount
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"{type(exc).__name__}: {exc}") from exc
        return int(removed)

    # -- the Store protocol --------------------------------------------------------------

    async def open(self) -> None:
        await self._call(self._open)

    async def write(
        self,
        results: Sequence[StoredResult],
        changes: Sequence[StateChange],
        states: Sequence[StateRecord] = (),
        outbox: Sequence[OutboxEntry] = (),
    ) -> None:
        if not self.writer_process:
            await self._call(self._write, results, changes, states, outbox)
            return
        from fraiseql_checks.stores.sqlite_writer import FrameTooLarge, WriterProcess, encode_write

        writer = self._writer
        if writer is None:
            await self._call(self._open)  # the store's own connection migrates the file first
            writer = self._writer = self._writer or WriterProcess(self.path, self.busy_timeout)
        try:
            await writer.write(await encode_write(results, changes, states, outbox))
        except FrameTooLarge:  # hundreds of MB of recorded values: the thread takes it, whole
            await self._call(self._write, results, changes, states, outbox)

    async def load_states(self) -> dict[str, StateRecord]:
        rows = await self._call(self._query, f"SELECT {_STATE_COLUMNS} FROM check_states", ())
        return {str(row[0]): state_of(row) for row in rows}

    async def outbox(
        self,
        since: float,
        until: float,
        *,
        status: Status | None = None,
        check_id: str | None = None,
        limit: int | None = None,
    ) -> list[OutboxEntry]:
        sql = f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE created_at >= ? AND created_at < ?"
        params: tuple[Any, ...] = (since, until)
        if status is not None:
            sql += " AND status = ?"
            params += (status.value,)
        if check_id is not None:
            sql += " AND check_id = ?"
            params += (check_id,)
        sql += " ORDER BY created_at, id LIMIT ?"
        rows = await self._call(self._query, sql, (*params, -1 if limit is None else limit))
        return [outbox_of(row) for row in rows]

    async def outbox_entry(self, entry_id: str) -> OutboxEntry | None:
        rows = await self._call(self._query, f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE id = ?", (entry_id,))
        return outbox_of(rows[0]) if rows else None

    async def reopen_outbox(self, entry_id: str, at: float, message_key: str) -> OutboxEntry | None:
        sql = (
            "UPDATE outbox SET status = 'pending', attempts = 0, last_error = '', sent_at = NULL,"
            " next_attempt_at = ?, message_key = ? WHERE id = ? AND status <> 'pending'"
            f" RETURNING {OUTBOX_COLUMNS}"
        )
        rows = await self._call(self._query, sql, (at, message_key, entry_id))
        return outbox_of(rows[0]) if rows else None

    async def silences(self) -> list[Silence]:
        rows = await self._call(self._query, f"SELECT {SILENCE_COLUMNS} FROM silences ORDER BY starts_at, id", ())
        return [silence_of(row) for row in rows]

    async def write_silence(self, silence: Silence) -> None:
        sql = (
            f"INSERT INTO silences ({SILENCE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET matchers = excluded.matchers, reason = excluded.reason,"
            " starts_at = excluded.starts_at, ends_at = excluded.ends_at, created_at = excluded.created_at,"
            " created_by = excluded.created_by"
        )
        await self._call(self._change, sql, silence_row(silence))

    async def delete_silence(self, silence_id: str) -> bool:
        return await self._call(self._change, "DELETE FROM silences WHERE id = ?", (silence_id,)) > 0

    async def results(self, check_id: str, since: float, until: float, limit: int | None = None) -> list[StoredResult]:
        sql = (
            f"SELECT {_RESULT_COLUMNS} FROM results WHERE check_id = ? AND started_at >= ? AND started_at < ?"
            " ORDER BY started_at LIMIT ?"
        )
        rows = await self._call(self._query, sql, (check_id, since, until, -1 if limit is None else limit))
        return [result_of(row) for row in rows]

    async def state_changes(self, since: float, until: float, check_id: str | None = None) -> list[StateChange]:
        sql = f"SELECT {_CHANGE_COLUMNS} FROM state_changes WHERE at >= ? AND at < ?"
        params: tuple[Any, ...] = (since, until)
        if check_id is not None:
            sql += " AND check_id = ?"
            params += (check_id,)
        rows = await self._call(self._query, sql + " ORDER BY at, check_id", params)
        return [change_of(row) for row in rows]

    async def sli_totals(
        self, check_ids: Sequence[str], windows: Sequence[tuple[float, float]]
    ) -> dict[str, list[SLITotals]]:
        plan = plan_windows(windows)
        days, hours, raw = await self._call(self._sli_totals, check_ids, plan)
        return await totals_off_loop(plan, check_ids, hours, raw, days)

    async def prune(self, before: float, *, rollups_before: float | None = None) -> int:
        return await self._call(self._prune, before, rollups_before)

    async def reset(self) -> bool:
        lane, self._lane = self._lane, None
        writer, self._writer = self._writer, None
        committing = lane is not None and lane.abandon()
        return (writer is not None and writer.abandon()) or committing

    async def close(self) -> None:
        lane, self._lane = self._lane, None
        writer, self._writer = self._writer, None
        # A call stuck (on the thread, or in the writer process) gets as long as a lock wait
        # may last; then the thread is left alone, and the writer process killed.
        if writer is not None:
            await writer.close(self.busy_timeout + 5.0)
        if lane is not None:
            await lane.close(self.busy_timeout + 5.0)


@hookimpl(trylast=True)
def fraiseql_make_store(config: Config, url: str) -> SQLiteStore | None:
    path = _path_of(url, config.rootdir)
    # a watcher's loop is busy for hours: its writes go to a process of their own
    return None if path is None else SQLiteStore(path, writer_process=bool(config.getoption("watch")))
