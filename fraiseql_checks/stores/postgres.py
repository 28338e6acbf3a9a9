"""The PostgreSQL result store (``--store postgresql://...``), with asyncpg.

Several watchers may share one database: the tables are created under an
advisory lock, and rows are keyed so that a batch written twice (a retry after a
lost acknowledgement) is stored once. A batch is one ``INSERT ... SELECT FROM
unnest(...)`` statement per table: one round trip for thousands of rows. Query
parameters of the URL other than libpq's are server settings, so
``?search_path=monitoring`` puts the tables in another schema.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from fraiseql_checks.hookspec import hookimpl
from fraiseql_checks.stores import StoredResult, StoreUnavailable, change_of, change_row, result_of
from fraiseql_checks.watch.state import StateChange

if TYPE_CHECKING:
    import asyncpg

    from fraiseql_checks.config import Config

SCHEMES = ("postgresql", "postgres")
#: Arbitrary but fixed: the advisory lock watchers take while migrating.
_MIGRATION_LOCK = 0x66726171
#: Migrations by number; each runs once, in order, recorded in ``fraiseql_check_schema``.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE fraiseql_check_results (
        check_id text NOT NULL,
        started_at timestamptz NOT NULL,
        kind text NOT NULL,
        duration_s double precision NOT NULL,
        outcome text NOT NULL,
        timed_out boolean NOT NULL,
        message text NOT NULL,
        trace_id text NOT NULL,
        recorded_values jsonb NOT NULL,
        PRIMARY KEY (check_id, started_at)
    );
    CREATE INDEX fraiseql_check_results_time ON fraiseql_check_results (started_at);
    CREATE TABLE fraiseql_check_state_changes (
        check_id text NOT NULL,
        at timestamptz NOT NULL,
        previous text NOT NULL,
        state text NOT NULL,
        silenced boolean NOT NULL,
        reason text NOT NULL,
        message text NOT NULL,
        trace_id text NOT NULL,
        consecutive_failures integer NOT NULL,
        PRIMARY KEY (check_id, at, state)
    );
    CREATE INDEX fraiseql_check_state_changes_time ON fraiseql_check_state_changes (at);
    """,
)
_INSERT_RESULTS = """
INSERT INTO fraiseql_check_results
    (trace_id, check_id, kind, started_at, duration_s, outcome, timed_out, message, recorded_values)
SELECT t, c, k, to_timestamp(s), d, o, x, m, v
FROM unnest($1::text[], $2::text[], $3::text[], $4::float8[], $5::float8[], $6::text[], $7::bool[],
            $8::text[], $9::jsonb[]) AS u(t, c, k, s, d, o, x, m, v)
ON CONFLICT DO NOTHING
"""
_INSERT_CHANGES = """
INSERT INTO fraiseql_check_state_changes
    (check_id, at, previous, state, silenced, reason, message, trace_id, consecutive_failures)
SELECT c, to_timestamp(a), p, s, q, r, m, t, n
FROM unnest($1::text[], $2::float8[], $3::text[], $4::text[], $5::bool[], $6::text[], $7::text[], $8::text[],
            $9::int[]) AS u(c, a, p, s, q, r, m, t, n)
ON CONFLICT DO NOTHING
"""
_RESULT_COLUMNS = (
    "check_id, extract(epoch from started_at)::float8, duration_s, outcome, message, trace_id,"
    " recorded_values::text, timed_out, kind"
)
_CHANGE_COLUMNS = (
    "check_id, extract(epoch from at)::float8, previous, state, silenced, reason, message, trace_id,"
    " consecutive_failures"
)


def _unavailable() -> tuple[type[BaseException], ...]:
    """The server went away, restarts, refuses us, or the network is down: retry later.

    (asyncpg is imported on first use: every run registers this plugin, few use the store.)
    """
    import asyncpg

    return (OSError, asyncio.TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


class PostgresStore:
    """Results and state changes in PostgreSQL tables ``fraiseql_check_*``."""

    def __init__(self, dsn: str, timeout: float = 10.0) -> None:
        self.url = dsn
        self._timeout = timeout
        self._pool: asyncpg.Pool | None = None
        self._migrated = False

    async def _connection_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            # min_size=0: creating the pool connects nobody, so a server that is down
            # now does not stop the watcher from starting.
            import asyncpg

            self._pool = await asyncpg.create_pool(
                self.url, min_size=0, max_size=2, command_timeout=self._timeout, timeout=self._timeout
            )
        if not self._migrated:
            async with self._pool.acquire(timeout=self._timeout) as conn, conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
                await conn.execute("CREATE TABLE IF NOT EXISTS fraiseql_check_schema (version integer NOT NULL)")
                version = await conn.fetchval("SELECT max(version) FROM fraiseql_check_schema") or 0
                for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                    await conn.execute(script)
                    await conn.execute("INSERT INTO fraiseql_check_schema (version) VALUES ($1)", number)
            self._migrated = True
        return self._pool

    async def _fetch(self, sql: str, *args: Any) -> list[Any]:
        try:
            pool = await self._connection_pool()
            async with pool.acquire(timeout=self._timeout) as conn:
                return list(await conn.fetch(sql, *args))
        except _unavailable() as exc:
            raise StoreUnavailable(f"{type(exc).__name__}: {exc}") from exc

    # -- the Store protocol --------------------------------------------------------------

    async def open(self) -> None:
        try:
            await self._connection_pool()
        except _unavailable() as exc:
            raise StoreUnavailable(f"{type(exc).__name__}: {exc}") from exc

    async def write(self, results: Sequence[StoredResult], changes: Sequence[StateChange]) -> None:
        try:
            pool = await self._connection_pool()
            async with pool.acquire(timeout=self._timeout) as conn, conn.transaction():
                if results:
                    await conn.execute(
                        _INSERT_RESULTS,
                        [r.trace_id for r in results],
                        [r.check_id for r in results],
                        [r.kind for r in results],
                        [r.started_at for r in results],
                        [r.duration_s for r in results],
                        [r.outcome.value for r in results],
                        [r.timed_out for r in results],
                        [r.message for r in results],
                        [r.values_json() for r in results],
                    )
                if changes:
                    rows = list(zip(*(change_row(c) for c in changes), strict=True))
                    await conn.execute(_INSERT_CHANGES, *(list(column) for column in rows))
        except _unavailable() as exc:
            raise StoreUnavailable(f"{type(exc).__name__}: {exc}") from exc

    async def results(self, check_id: str, since: float, until: float, limit: int | None = None) -> list[StoredResult]:
        rows = await self._fetch(
            f"SELECT {_RESULT_COLUMNS} FROM fraiseql_check_results WHERE check_id = $1"
            " AND started_at >= to_timestamp($2) AND started_at < to_timestamp($3) ORDER BY started_at LIMIT $4",
            check_id,
            since,
            until,
            limit,
        )
        return [result_of(tuple(row)) for row in rows]

    async def state_changes(self, since: float, until: float, check_id: str | None = None) -> list[StateChange]:
        sql = f"SELECT {_CHANGE_COLUMNS} FROM fraiseql_check_state_changes WHERE at >= to_timestamp($1)"
        sql += " AND at < to_timestamp($2) AND ($3::text IS NULL OR check_id = $3) ORDER BY at, check_id"
        rows = await self._fetch(sql, since, until, check_id)
        return [change_of(tuple(row)) for row in rows]

    async def prune(self, before: float) -> int:
        try:
            pool = await self._connection_pool()
            async with pool.acquire(timeout=self._timeout) as conn:
                removed = 0
                for sql in (
                    "DELETE FROM fraiseql_check_results WHERE started_at < to_timestamp($1)",
                    "DELETE FROM fraiseql_check_state_changes WHERE at < to_timestamp($1)",
                ):
                    status = await conn.execute(sql, before)
                    removed += int(status.rsplit(" ", 1)[-1])
                return removed
        except _unavailable() as exc:
            raise StoreUnavailable(f"{type(exc).__name__}: {exc}") from exc

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), self._timeout)
            except _unavailable():
                pool.terminate()


@hookimpl
def fraiseql_make_store(config: Config, url: str) -> PostgresStore | None:
    if url.split("://", 1)[0].lower() not in SCHEMES or "://" not in url:
        return None
    return PostgresStore(url)
