"""The embedded result store: one SQLite file (default ``.fraiseql-checks/results.db``).

WAL journal, so readers never wait for the writer; batches of rows in one
transaction; all SQLite work on one thread of its own, so the event loop never
waits for the disk. Any value of ``store`` that is not a URL is a path to this
file, relative to the root directory; ``sqlite:///path`` works too.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import sqlite3
import urllib.parse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from fraiseql_checks.config import UsageError
from fraiseql_checks.hookspec import hookimpl
from fraiseql_checks.stores import StoredResult, StoreUnavailable, change_of, change_row, result_of
from fraiseql_checks.watch.state import StateChange

if TYPE_CHECKING:
    from fraiseql_checks.config import Config

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
)
_RESULT_COLUMNS = "check_id, started_at, duration_s, outcome, message, trace_id, recorded_values, timed_out, kind"
_CHANGE_COLUMNS = "check_id, at, previous, state, silenced, reason, message, trace_id, consecutive_failures"


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


class SQLiteStore:
    """Results and state changes in one SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.url = str(path)
        self._conn: sqlite3.Connection | None = None
        self._thread = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="fraiseql-check-sqlite")

    async def _call(self, func: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, func, *args)

    # -- on the store's thread -----------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=5000")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                conn.executescript(f"BEGIN IMMEDIATE; {script}; PRAGMA user_version={number}; COMMIT;")
        except (OSError, sqlite3.Error) as exc:
            raise UsageError(f"cannot open the result store {self.path}: {exc}") from None
        return conn

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = self._connect()
        return self._conn

    def _write(self, results: Sequence[StoredResult], changes: Sequence[StateChange]) -> None:
        conn = self._db()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                if results:
                    conn.executemany(
                        f"INSERT OR IGNORE INTO results ({_RESULT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [
                            (
                                r.check_id,
                                r.started_at,
                                r.duration_s,
                                r.outcome.value,
                                r.message,
                                r.trace_id,
                                r.values_json(),
                                int(r.timed_out),
                                r.kind,
                            )
                            for r in results
                        ],
                    )
                if changes:
                    conn.executemany(
                        f"INSERT OR IGNORE INTO state_changes ({_CHANGE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [change_row(c) for c in changes],
                    )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:  # disk full, locked for too long, file removed
            raise StoreUnavailable(f"{type(exc).__name__}: {exc}") from exc

    def _query(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        try:
            return self._db().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"{type(exc).__name__}: {exc}") from exc

    def _prune(self, before: float) -> int:
        conn = self._db()
        try:
            removed = conn.execute("DELETE FROM results WHERE started_at < ?", (before,)).rowcount
            removed += conn.execute("DELETE FROM state_changes WHERE at < ?", (before,)).rowcount
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"{type(exc).__name__}: {exc}") from exc
        return int(removed)

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # -- the Store protocol --------------------------------------------------------------

    async def open(self) -> None:
        await self._call(self._db)

    async def write(self, results: Sequence[StoredResult], changes: Sequence[StateChange]) -> None:
        await self._call(self._write, results, changes)

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

    async def prune(self, before: float) -> int:
        return await self._call(self._prune, before)

    async def close(self) -> None:
        try:
            await self._call(self._close)
        finally:
            self._thread.shutdown(wait=False)


@hookimpl(trylast=True)
def fraiseql_make_store(config: Config, url: str) -> SQLiteStore | None:
    path = _path_of(url, config.rootdir)
    return None if path is None else SQLiteStore(path)
