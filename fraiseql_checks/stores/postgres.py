"""The PostgreSQL result store (``--store postgresql://...``), with asyncpg.

Several watchers may share one database: the tables are created under an
advisory lock, and rows are keyed so that a batch written twice (a retry after a
lost acknowledgement) is stored once. A batch is one ``INSERT ... SELECT FROM
unnest(...)`` statement per table: one round trip for thousands of rows. Query
parameters of the URL other than libpq's are server settings, so
``?search_path=monitoring`` puts the tables in another schema.

Hourly and daily SLO rollups (``fraiseql_check_slo_rollups``,
``fraiseql_check_slo_daily_rollups``) are each kept by a statement-level
trigger on the results table: its transition table holds the rows the ``INSERT``
really inserted (not those ``ON CONFLICT DO NOTHING`` skipped), and it runs in the
writer's transaction, so a batch written twice counts once, rows from a watcher of
an older version count too, and concurrent watchers add to the same hours safely
(the upsert locks each hour's row; sorting them avoids deadlocks).

Each check's state is one row of ``fraiseql_check_states``, upserted in the batch's
transaction. ``reset`` terminates the pool's connections: a transaction cut off
before its COMMIT is rolled back by the server, so only a write already committing
may have landed (``reset`` says so).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from fraiseql_checks.hookspec import hookimpl
from fraiseql_checks.outbox import OutboxEntry, Status
from fraiseql_checks.silences import Silence
from fraiseql_checks.stores import SLITotals, StateChange, StateRecord, StoredResult, StoreUnavailable
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
    state_of,
    state_row,
)
from fraiseql_checks.stores.sli import DAY, HOUR, plan_windows, totals_off_loop

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
    # 2: SLO rollups, kept by a trigger, and filled from the results stored before
    # (which count as runs of 0 seconds: their interval is unknown). What counts:
    # check runs not silenced; passed is good, failed or errored is bad. The bucket
    # is the start of the UTC hour in seconds since the epoch.
    """
    ALTER TABLE fraiseql_check_results
        ADD COLUMN interval_s double precision NOT NULL DEFAULT 0,
        ADD COLUMN silenced boolean NOT NULL DEFAULT false;
    CREATE TABLE fraiseql_check_slo_rollups (
        check_id text NOT NULL,
        bucket bigint NOT NULL,
        good_s double precision NOT NULL,
        bad_s double precision NOT NULL,
        good_runs bigint NOT NULL,
        bad_runs bigint NOT NULL,
        PRIMARY KEY (check_id, bucket)
    );
    CREATE INDEX fraiseql_check_slo_rollups_time ON fraiseql_check_slo_rollups (bucket);
    INSERT INTO fraiseql_check_slo_rollups (check_id, bucket, good_s, bad_s, good_runs, bad_runs)
    SELECT check_id, floor(extract(epoch FROM started_at) / 3600)::bigint * 3600,
        coalesce(sum(interval_s) FILTER (WHERE outcome = 'passed'), 0),
        coalesce(sum(interval_s) FILTER (WHERE outcome <> 'passed'), 0),
        count(*) FILTER (WHERE outcome = 'passed'),
        count(*) FILTER (WHERE outcome <> 'passed')
    FROM fraiseql_check_results
    WHERE kind = 'check' AND NOT silenced AND outcome IN ('passed', 'failed', 'error')
    GROUP BY 1, 2;
    CREATE FUNCTION fraiseql_check_slo_rollup() RETURNS trigger LANGUAGE plpgsql
    SET search_path FROM CURRENT AS $$
    BEGIN
        INSERT INTO fraiseql_check_slo_rollups AS r (check_id, bucket, good_s, bad_s, good_runs, bad_runs)
        SELECT check_id, floor(extract(epoch FROM started_at) / 3600)::bigint * 3600,
            coalesce(sum(interval_s) FILTER (WHERE outcome = 'passed'), 0),
            coalesce(sum(interval_s) FILTER (WHERE outcome <> 'passed'), 0),
            count(*) FILTER (WHERE outcome = 'passed'),
            count(*) FILTER (WHERE outcome <> 'passed')
        FROM inserted
        WHERE kind = 'check' AND NOT silenced AND outcome IN ('passed', 'failed', 'error')
        GROUP BY 1, 2
        ORDER BY 1, 2
        ON CONFLICT (check_id, bucket) DO UPDATE SET
            good_s = r.good_s + excluded.good_s,
            bad_s = r.bad_s + excluded.bad_s,
            good_runs = r.good_runs + excluded.good_runs,
            bad_runs = r.bad_runs + excluded.bad_runs;
        RETURN NULL;
    END
    $$;
    CREATE TRIGGER fraiseql_check_slo_rollup AFTER INSERT ON fraiseql_check_results
    REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION fraiseql_check_slo_rollup();
    """,
    # 3: each check's state machine, one row per check (``stores.StateRecord``); the
    # time lists are JSON arrays of seconds since the epoch.
    """
    CREATE TABLE fraiseql_check_states (
        check_id text PRIMARY KEY,
        base text NOT NULL,
        state text NOT NULL,
        consecutive_failures integer NOT NULL,
        consecutive_successes integer NOT NULL,
        failures jsonb NOT NULL,
        changes jsonb NOT NULL,
        since timestamptz,
        updated_at timestamptz
    );
    """,
    # 4: the notification outbox (``outbox.OutboxEntry``), written with the state
    # changes that made its entries. Times stay seconds since the epoch: they are
    # compared and moved by the sender, never shown by the database.
    """
    CREATE TABLE fraiseql_check_outbox (
        id text PRIMARY KEY,
        receiver text NOT NULL,
        check_id text NOT NULL,
        kind text NOT NULL,
        created_at double precision NOT NULL,
        not_before double precision NOT NULL,
        event jsonb NOT NULL,
        root_cause text NOT NULL,
        status text NOT NULL,
        attempts integer NOT NULL,
        next_attempt_at double precision NOT NULL,
        last_error text NOT NULL,
        sent_at double precision,
        message_key text NOT NULL
    );
    CREATE INDEX fraiseql_check_outbox_time ON fraiseql_check_outbox (created_at);
    CREATE INDEX fraiseql_check_outbox_status ON fraiseql_check_outbox (status, created_at);
    """,
    # 5: silences made through the API (``silences.Silence``). Times as in the outbox.
    """
    CREATE TABLE fraiseql_check_silences (
        id text PRIMARY KEY,
        matchers jsonb NOT NULL,
        reason text NOT NULL,
        starts_at double precision NOT NULL,
        ends_at double precision NOT NULL,
        created_at double precision NOT NULL,
        created_by text NOT NULL
    );
    """,
    # 6: high availability (``watch.cluster``). Each watcher of a cluster keeps one row,
    # its lease, renewed every second by ``fraiseql_check_heartbeat`` in one round trip
    # on the database's clock; an outbox entry is sent by the watcher that claimed it.
    """
    CREATE SEQUENCE fraiseql_check_member_epochs;
    CREATE TABLE fraiseql_check_members (
        cluster text NOT NULL,
        member text NOT NULL,
        epoch bigint NOT NULL,
        host text NOT NULL,
        pid integer NOT NULL,
        started_at timestamptz NOT NULL,
        heartbeat_at timestamptz NOT NULL,
        expires_at timestamptz NOT NULL,
        PRIMARY KEY (cluster, member)
    );
    ALTER TABLE fraiseql_check_outbox
        ADD COLUMN claimed_by text,
        ADD COLUMN claimed_until double precision;
    CREATE FUNCTION fraiseql_check_heartbeat(
        p_cluster text, p_member text, p_epoch bigint, p_host text, p_pid integer, p_ttl double precision
    ) RETURNS TABLE (o_member text, o_epoch bigint, o_renewed boolean, o_expires_in double precision)
    LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
    DECLARE
        kept bigint;
    BEGIN
        DELETE FROM fraiseql_check_members AS m WHERE m.cluster = p_cluster AND m.expires_at <= now();
        UPDATE fraiseql_check_members AS m
            SET heartbeat_at = now(), expires_at = now() + p_ttl * interval '1 second'
            WHERE m.cluster = p_cluster AND m.member = p_member AND m.epoch = p_epoch
            RETURNING m.epoch INTO kept;
        IF kept IS NULL THEN
            INSERT INTO fraiseql_check_members AS m
                (cluster, member, epoch, host, pid, started_at, heartbeat_at, expires_at)
            VALUES (p_cluster, p_member, nextval('fraiseql_check_member_epochs'), p_host, p_pid, now(), now(),
                    now() + p_ttl * interval '1 second')
            ON CONFLICT (cluster, member) DO UPDATE SET
                epoch = excluded.epoch, host = excluded.host, pid = excluded.pid, started_at = excluded.started_at,
                heartbeat_at = excluded.heartbeat_at, expires_at = excluded.expires_at
            RETURNING m.epoch INTO kept;
        END IF;
        RETURN QUERY
            SELECT m.member, m.epoch, m.member = p_member AND m.epoch = p_epoch,
                extract(epoch FROM m.expires_at - now())::double precision
            FROM fraiseql_check_members AS m
            WHERE m.cluster = p_cluster
            ORDER BY m.member;
    END
    $$;
    """,
    # 7: a member tells, with each heartbeat, the newest epoch among the members it has
    # applied the assignment of (``seen_epoch``): a newcomer starts the checks a join gave
    # it once every other member has seen it join, instead of waiting out their leases.
    # The six-argument heartbeat stays for watchers of the previous version, as a wrapper
    # of the new one that tells nothing (their ``seen_epoch`` stays 0, and a newcomer then
    # waits out the leases as before).
    """
    ALTER TABLE fraiseql_check_members ADD COLUMN seen_epoch bigint NOT NULL DEFAULT 0;
    CREATE FUNCTION fraiseql_check_heartbeat(
        p_cluster text, p_member text, p_epoch bigint, p_host text, p_pid integer, p_ttl double precision,
        p_seen bigint
    ) RETURNS TABLE (
        o_member text, o_epoch bigint, o_renewed boolean, o_expires_in double precision, o_seen bigint
    )
    LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
    DECLARE
        kept bigint;
    BEGIN
        DELETE FROM fraiseql_check_members AS m WHERE m.cluster = p_cluster AND m.expires_at <= now();
        UPDATE fraiseql_check_members AS m
            SET heartbeat_at = now(), expires_at = now() + p_ttl * interval '1 second', seen_epoch = p_seen
            WHERE m.cluster = p_cluster AND m.member = p_member AND m.epoch = p_epoch
            RETURNING m.epoch INTO kept;
        IF kept IS NULL THEN
            INSERT INTO fraiseql_check_members AS m
                (cluster, member, epoch, host, pid, started_at, heartbeat_at, expires_at, seen_epoch)
            VALUES (p_cluster, p_member, nextval('fraiseql_check_member_epochs'), p_host, p_pid, now(), now(),
                    now() + p_ttl * interval '1 second', 0)
            ON CONFLICT (cluster, member) DO UPDATE SET
                epoch = excluded.epoch, host = excluded.host, pid = excluded.pid, started_at = excluded.started_at,
                heartbeat_at = excluded.heartbeat_at, expires_at = excluded.expires_at, seen_epoch = 0
            RETURNING m.epoch INTO kept;
        END IF;
        RETURN QUERY
            SELECT m.member, m.epoch, m.member = p_member AND m.epoch = p_epoch,
                extract(epoch FROM m.expires_at - now())::double precision, m.seen_epoch
            FROM fraiseql_check_members AS m
            WHERE m.cluster = p_cluster
            ORDER BY m.member;
    END
    $$;
    CREATE OR REPLACE FUNCTION fraiseql_check_heartbeat(
        p_cluster text, p_member text, p_epoch bigint, p_host text, p_pid integer, p_ttl double precision
    ) RETURNS TABLE (o_member text, o_epoch bigint, o_renewed boolean, o_expires_in double precision)
    LANGUAGE sql SET search_path FROM CURRENT AS $$
        SELECT h.o_member, h.o_epoch, h.o_renewed, h.o_expires_in
        FROM fraiseql_check_heartbeat(p_cluster, p_member, p_epoch, p_host, p_pid, p_ttl, 0) AS h;
    $$;
    """,
    # 8: daily SLO rollups (per check and UTC day), kept by a statement trigger as the
    # hourly ones are, and filled from the hourly ones: 30 days are 30 rows per check,
    # not 720. The bucket is the start of the UTC day in seconds since the epoch.
    """
    CREATE TABLE fraiseql_check_slo_daily_rollups (
        check_id text NOT NULL,
        bucket bigint NOT NULL,
        good_s double precision NOT NULL,
        bad_s double precision NOT NULL,
        good_runs bigint NOT NULL,
        bad_runs bigint NOT NULL,
        PRIMARY KEY (check_id, bucket)
    );
    CREATE INDEX fraiseql_check_slo_daily_rollups_time ON fraiseql_check_slo_daily_rollups (bucket);
    INSERT INTO fraiseql_check_slo_daily_rollups (check_id, bucket, good_s, bad_s, good_runs, bad_runs)
    SELECT check_id, floor(bucket / 86400.0)::bigint * 86400, sum(good_s), sum(bad_s), sum(good_runs), sum(bad_runs)
    FROM fraiseql_check_slo_rollups
    GROUP BY 1, 2;
    CREATE FUNCTION fraiseql_check_slo_daily_rollup() RETURNS trigger LANGUAGE plpgsql
    SET search_path FROM CURRENT AS $$
    BEGIN
        INSERT INTO fraiseql_check_slo_daily_rollups AS r (check_id, bucket, good_s, bad_s, good_runs, bad_runs)
        SELECT check_id, floor(extract(epoch FROM started_at) / 86400)::bigint * 86400,
            coalesce(sum(interval_s) FILTER (WHERE outcome = 'passed'), 0),
            coalesce(sum(interval_s) FILTER (WHERE outcome <> 'passed'), 0),
            count(*) FILTER (WHERE outcome = 'passed'),
            count(*) FILTER (WHERE outcome <> 'passed')
        FROM inserted
        WHERE kind = 'check' AND NOT silenced AND outcome IN ('passed', 'failed', 'error')
        GROUP BY 1, 2
        ORDER BY 1, 2
        ON CONFLICT (check_id, bucket) DO UPDATE SET
            good_s = r.good_s + excluded.good_s,
            bad_s = r.bad_s + excluded.bad_s,
            good_runs = r.good_runs + excluded.good_runs,
            bad_runs = r.bad_runs + excluded.bad_runs;
        RETURN NULL;
    END
    $$;
    CREATE TRIGGER fraiseql_check_slo_daily_rollup AFTER INSERT ON fraiseql_check_results
    REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION fraiseql_check_slo_daily_rollup();
    """,
)
_INSERT_RESULTS = """
INSERT INTO fraiseql_check_results
    (trace_id, check_id, kind, started_at, duration_s, outcome, timed_out, message, recorded_values, interval_s,
     silenced)
SELECT t, c, k, to_timestamp(s), d, o, x, m, v, i, q
FROM unnest($1::text[], $2::text[], $3::text[], $4::float8[], $5::float8[], $6::text[], $7::bool[],
            $8::text[], $9::jsonb[], $10::float8[], $11::bool[]) AS u(t, c, k, s, d, o, x, m, v, i, q)
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
# Sorted by check: concurrent watchers lock the rows in the same order.
_UPSERT_STATES = """
INSERT INTO fraiseql_check_states
    (check_id, base, state, consecutive_failures, consecutive_successes, failures, changes, since, updated_at)
SELECT c, b, s, f, k, fl, cl, to_timestamp(si), to_timestamp(w)
FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::int[], $6::jsonb[], $7::jsonb[], $8::float8[],
            $9::float8[]) AS u(c, b, s, f, k, fl, cl, si, w)
ORDER BY c
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
# Sorted by id: concurrent watchers lock the rows in the same order. A pending entry
# never replaces one that is done: a restart that makes an entry again (its id is
# stable) must not send it twice.
_UPSERT_OUTBOX = """
INSERT INTO fraiseql_check_outbox
    (id, receiver, check_id, kind, created_at, not_before, event, root_cause, status, attempts, next_attempt_at,
     last_error, sent_at, message_key)
SELECT *
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::float8[], $6::float8[], $7::jsonb[], $8::text[],
            $9::text[], $10::int[], $11::float8[], $12::text[], $13::float8[], $14::text[])
ORDER BY 1
ON CONFLICT (id) DO UPDATE SET
    status = excluded.status,
    attempts = excluded.attempts,
    next_attempt_at = excluded.next_attempt_at,
    last_error = excluded.last_error,
    sent_at = excluded.sent_at,
    message_key = excluded.message_key,
    not_before = excluded.not_before
WHERE fraiseql_check_outbox.status = 'pending'
"""
_OUTBOX_COLUMNS = OUTBOX_COLUMNS.replace("event,", "event::text,")
#: An outbox claim whose member holds no live lease (in any cluster: member names are unique).
_CLAIMER_GONE = (
    "NOT EXISTS (SELECT 1 FROM fraiseql_check_members AS m"
    " WHERE m.member = fraiseql_check_outbox.claimed_by AND m.expires_at > now())"
)
_STATE_COLUMNS = (
    "check_id, base, state, consecutive_failures, consecutive_successes, failures::text, changes::text,"
    " extract(epoch from since)::float8, extract(epoch from updated_at)::float8"
)
_RESULT_COLUMNS = (
    "check_id, extract(epoch from started_at)::float8, duration_s, outcome, message, trace_id,"
    " recorded_values::text, timed_out, kind, interval_s, silenced"
)
_CHANGE_COLUMNS = (
    "check_id, extract(epoch from at)::float8, previous, state, silenced, reason, message, trace_id,"
    " consecutive_failures"
)

# sli_totals, in one statement (one snapshot): the sums of every segment (disjoint
# ranges, see ``stores.SLIPlan``) of every check, from the daily rollups (level 2), the
# hourly rollups (0) and the raw results, counted as the triggers count them (1). Each
# segment is a range scan of its own (LATERAL), whatever the planner's statistics say.
_SLI_TOTALS = """
SELECT 2, s.n - 1, t.*
FROM unnest($6::bigint[], $7::bigint[]) WITH ORDINALITY AS s(since, until, n)
CROSS JOIN LATERAL (
    SELECT r.check_id, sum(r.good_s), sum(r.bad_s), sum(r.good_runs)::bigint, sum(r.bad_runs)::bigint
    FROM fraiseql_check_slo_daily_rollups AS r
    WHERE r.check_id = ANY($1::text[]) AND r.bucket >= s.since AND r.bucket < s.until
    GROUP BY r.check_id
) AS t
UNION ALL
SELECT 0, s.n - 1, t.*
FROM unnest($2::bigint[], $3::bigint[]) WITH ORDINALITY AS s(since, until, n)
CROSS JOIN LATERAL (
    SELECT r.check_id, sum(r.good_s), sum(r.bad_s), sum(r.good_runs)::bigint, sum(r.bad_runs)::bigint
    FROM fraiseql_check_slo_rollups AS r
    WHERE r.check_id = ANY($1::text[]) AND r.bucket >= s.since AND r.bucket < s.until
    GROUP BY r.check_id
) AS t
UNION ALL
SELECT 1, s.n - 1, t.*
FROM unnest($4::float8[], $5::float8[]) WITH ORDINALITY AS s(since, until, n)
CROSS JOIN LATERAL (
    SELECT r.check_id,
        sum(r.interval_s) FILTER (WHERE r.outcome = 'passed'),
        sum(r.interval_s) FILTER (WHERE r.outcome <> 'passed'),
        count(*) FILTER (WHERE r.outcome = 'passed'),
        count(*) FILTER (WHERE r.outcome <> 'passed')
    FROM fraiseql_check_results AS r
    WHERE r.check_id = ANY($1::text[])
        AND r.started_at >= to_timestamp(s.since) AND r.started_at < to_timestamp(s.until)
        AND r.kind = 'check' AND NOT r.silenced AND r.outcome IN ('passed', 'failed', 'error')
    GROUP BY r.check_id
) AS t
"""


@dataclasses.dataclass(frozen=True)
class Member:
    """One live member of a cluster, as a heartbeat sees it."""

    member: str
    epoch: int
    #: The lease this row stands for is the caller's own, renewed (not a new join).
    renewed: bool
    #: Seconds until the lease expires, on the database's clock.
    expires_in: float
    #: The newest epoch among the members whose assignment this member has applied.
    seen_epoch: int = 0


def _unavailable() -> tuple[type[BaseException], ...]:
    """The server went away, restarts, refuses us, or the network is down: retry later.

    (asyncpg is imported on first use: every run registers this plugin, few use the store.)
    """
    import asyncio

    import asyncpg

    return (OSError, asyncio.TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


class PostgresStore:
    """Results and state changes in PostgreSQL tables ``fraiseql_check_*``."""

    def __init__(self, dsn: str, timeout: float = 10.0) -> None:
        self.url = dsn
        self._timeout = timeout
        self._pool: asyncpg.Pool | None = None
        self._migrated = False
        #: Set by a write once it asks to commit, until it returns: a write given up on
        #: then (``reset``) may have been stored.
        self._committing: object | None = None
        self._coordination: asyncpg.Connection | None = None

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

    async def _execute(self, sql: str, *args: Any) -> str:
        try:
            pool = await self._connection_pool()
            async with pool.acquire(timeout=self._timeout) as conn:
                return str(await conn.execute(sql, *args))
        except _unavailable() as exc:
            raise StoreUnavailable(f"{type(exc).__name__}: {exc}") from exc

    # -- the Store protocol --------------------------------------------------------------

    async def open(self) -> None:
        try:
            await self._connection_pool()
        except _unavailable() as exc:
            raise StoreUnavailable(f"{type(exc).__name__}: {exc}") from exc

    async def write(
        self,
        results: Sequence[StoredResult],
        changes: Sequence[StateChange],
        states: Sequence[StateRecord] = (),
        outbox: Sequence[OutboxEntry] = (),
    ) -> None:
        token = object()
        try:
            pool = await self._connection_pool()
            async with pool.acquire(timeout=self._timeout) as conn:
                async with conn.transaction():
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
                            [r.interval_s for r in results],
                            [r.silenced for r in results],
                        )
                    if changes:
                        rows = list(zip(*(change_row(c) for c in changes), strict=True))
                        await conn.execute(_INSERT_CHANGES, *(list(column) for column in rows))
                    if states:
                        latest = {record.check_id: record for record in states}
                        rows = list(zip(*(state_row(record) for record in latest.values()), strict=True))
                        await conn.execute(_UPSERT_STATES, *(list(column) for column in rows))
                    if outbox:
                        newest = {entry.id: entry for entry in outbox}
                        rows = list(zip(*(outbox_row(entry) for entry in newest.values()), strict=True))
                        await conn.execute(_UPSERT_OUTBOX, *(list(column) for column in rows))
                    self._committing = token  # leaving the block sends COMMIT
        except _unavailable() as exc:
            raise StoreUnavailable(f"{type(exc).__name__}: {exc}") from exc
        finally:
            if self._committing is token:
                self._committing = None

    async def load_states(self) -> dict[str, StateRecord]:
        rows = await self._fetch(f"SELECT {_STATE_COLUMNS} FROM fraiseql_check_states")
        return {str(row[0]): state_of(tuple(row)) for row in rows}

    async def outbox(
        self,
        since: float,
        until: float,
        *,
        status: Status | None = None,
        check_id: str | None = None,
        limit: int | None = None,
    ) -> list[OutboxEntry]:
        rows = await self._fetch(
            f"SELECT {_OUTBOX_COLUMNS} FROM fraiseql_check_outbox WHERE created_at >= $1 AND created_at < $2"
            " AND ($3::text IS NULL OR status = $3) AND ($4::text IS NULL OR check_id = $4)"
            " ORDER BY created_at, id LIMIT $5",
            since,
            until,
            None if status is None else status.value,
            check_id,
            limit,
        )
        return [outbox_of(tuple(row)) for row in rows]

    async def outbox_entry(self, entry_id: str) -> OutboxEntry | None:
        rows = await self._fetch(f"SELECT {_OUTBOX_COLUMNS} FROM fraiseql_check_outbox WHERE id = $1", entry_id)
        return outbox_of(tuple(rows[0])) if rows else None

    async def reopen_outbox(self, entry_id: str, at: float, message_key: str) -> OutboxEntry | None:
        rows = await self._fetch(
            "UPDATE fraiseql_check_outbox SET status = 'pending', attempts = 0, last_error = '', sent_at = NULL,"
            " next_attempt_at = $1, message_key = $2 WHERE id = $3 AND status <> 'pending'"
            f" RETURNING {_OUTBOX_COLUMNS}",
            at,
            message_key,
            entry_id,
        )
        return outbox_of(tuple(rows[0])) if rows else None

    async def silences(self) -> list[Silence]:
        columns = SILENCE_COLUMNS.replace("matchers,", "matchers::text,")
        rows = await self._fetch(f"SELECT {columns} FROM fraiseql_check_silences ORDER BY starts_at, id")
        return [silence_of(tuple(row)) for row in rows]

    async def write_silence(self, silence: Silence) -> None:
        await self._execute(
            f"INSERT INTO fraiseql_check_silences ({SILENCE_COLUMNS}) VALUES ($1, $2::jsonb, $3, $4, $5, $6, $7)"
            " ON CONFLICT (id) DO UPDATE SET matchers = excluded.matchers, reason = excluded.reason,"
            " starts_at = excluded.starts_at, ends_at = excluded.ends_at, created_at = excluded.created_at,"
            " created_by = excluded.created_by",
            *silence_row(silence),
        )

    async def delete_silence(self, silence_id: str) -> bool:
        status = await self._execute("DELETE FROM fraiseql_check_silences WHERE id = $1", silence_id)
        return int(status.rsplit(" ", 1)[-1]) > 0

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

    async def sli_totals(
        self, check_ids: Sequence[str], windows: Sequence[tuple[float, float]]
    ) -> dict[str, list[SLITotals]]:
        plan = plan_windows(windows)
        if not plan.hours and not plan.raw and not plan.days:
            return plan.totals(check_ids, [], [])
        try:
            pool = await self._connection_pool()
            async with pool.acquire(timeout=self._timeout) as conn, conn.transaction(readonly=True):
                # Compiling the query (JIT, for its high estimated cost) takes longer than running it.
                await conn.execute("SET LOCAL jit = off")
                rows = await conn.fetch(
                    _SLI_TOTALS,
                    list(dict.fromkeys(check_ids)),
                    [since for since, _ in plan.hours],
                    [until for _, until in plan.hours],
                    [since for since, _ in plan.raw],
                    [until for _, until in plan.raw],
                    [since for since, _ in plan.days],
                    [until for _, until in plan.days],
                )
        except _unavailable() as exc:
            raise StoreUnavailable(f"{type(exc).__name__}: {exc}") from exc
        levels: tuple[list[Any], list[Any], list[Any]] = ([], [], [])
        for row in rows:
            levels[row[0]].append(row[1:])
        return await totals_off_loop(plan, check_ids, *levels)

    async def prune(self, before: float, *, rollups_before: float | None = None) -> int:
        statements: list[tuple[str, float]] = [
            ("DELETE FROM fraiseql_check_results WHERE started_at < to_timestamp($1)", before),
            ("DELETE FROM fraiseql_check_state_changes WHERE at < to_timestamp($1)", before),
            ("DELETE FROM fraiseql_check_states WHERE updated_at < to_timestamp($1)", before),
            ("DELETE FROM fraiseql_check_outbox WHERE created_at < $1 AND status <> 'pending'", before),
            ("DELETE FROM fraiseql_check_silences WHERE ends_at < $1", before),
        ]
        if rollups_before is not None:  # the hours that ended by then
            last_hour = math.floor(rollups_before - HOUR)
            statements.append(("DELETE FROM fraiseql_check_slo_rollups WHERE bucket <= $1", last_hour))
            last_day = math.floor(rollups_before - DAY)
            statements.append(("DELETE FROM fraiseql_check_slo_daily_rollups WHERE bucket <= $1", last_day))
        try:
            pool = await self._connection_pool()
            async with pool.acquire(timeout=self._timeout) as conn:
                removed = 0
                for sql, before_time in statements:
                    status = await conn.execute(sql, before_time)
                    removed += int(status.rsplit(" ", 1)[-1])
                return removed
        except _unavailable() as exc:
            raise StoreUnavailable(f"{type(exc).__name__}: {exc}") from exc

    # -- high availability (``watch.cluster``); PostgreSQL only ------------------------------

    async def _coordinate(self, sql: str, *args: Any, timeout: float) -> list[Any]:
        """Run a coordination statement on a connection of its own, so a heartbeat never
        waits behind a batch of results; the connection is dropped on any failure."""
        try:
            await self._connection_pool()  # migrated
            if self._coordination is None or self._coordination.is_closed():
                import asyncpg

                self._coordination = await asyncpg.connect(self.url, timeout=timeout, command_timeout=timeout)
            return list(await self._coordination.fetch(sql, *args, timeout=timeout))
        except _unavailable() as exc:
            conn, self._coordination = self._coordination, None
            if conn is not None:
                conn.terminate()
            raise StoreUnavailable(f"{type(exc).__name__}: {exc}") from exc

    async def heartbeat(
        self,
        cluster: str,
        member: str,
        epoch: int,
        host: str,
        pid: int,
        ttl: float,
        *,
        timeout: float,
        seen_epoch: int = 0,
    ) -> list[Member]:
        """Renew ``member``'s lease of ``cluster`` (joining anew, with a new epoch, when
        the lease of ``epoch`` lapsed or was never held), record the newest epoch it has
        applied the assignment of, delete the expired leases, and return the live members,
        in one round trip; times on the database's clock."""
        rows = await self._coordinate(
            "SELECT * FROM fraiseql_check_heartbeat($1, $2, $3, $4, $5, $6, $7)",
            cluster,
            member,
            epoch,
            host,
            pid,
            ttl,
            seen_epoch,
            timeout=timeout,
        )
        return [Member(str(row[0]), int(row[1]), bool(row[2]), float(row[3]), int(row[4])) for row in rows]

    async def leave(self, cluster: str, member: str, epoch: int, *, timeout: float) -> None:
        """Delete ``member``'s lease: its checks move to the others at their next heartbeat."""
        await self._coordinate(
            "DELETE FROM fraiseql_check_members WHERE cluster = $1 AND member = $2 AND epoch = $3",
            cluster,
            member,
            epoch,
            timeout=timeout,
        )

    async def states_of(self, check_ids: Sequence[str]) -> dict[str, StateRecord]:
        """The stored states of these checks (a fresh read, for checks a watcher takes over)."""
        rows = await self._fetch(
            f"SELECT {_STATE_COLUMNS} FROM fraiseql_check_states WHERE check_id = ANY($1::text[])", list(check_ids)
        )
        return {str(row[0]): state_of(tuple(row)) for row in rows}

    async def outbox_of(self, check_ids: Sequence[str], since: float) -> list[OutboxEntry]:
        """The outbox entries of these checks created since ``since``, oldest first."""
        rows = await self._fetch(
            f"SELECT {_OUTBOX_COLUMNS} FROM fraiseql_check_outbox WHERE check_id = ANY($1::text[])"
            " AND created_at >= $2 ORDER BY created_at, id",
            list(check_ids),
            since,
        )
        return [outbox_of(tuple(row)) for row in rows]

    async def claim_outbox(
        self, member: str, check_ids: Sequence[str], *, until: float, older_than: float, limit: int = 500
    ) -> list[OutboxEntry]:
        """Claim for ``member``, until ``until``, the pending outbox entries of these checks
        that nobody live will send: those it claimed already, those claimed by a member whose
        lease is gone, and unclaimed ones due before ``older_than`` (their maker had time to
        claim them). Rows another watcher is claiming now are skipped, not waited for. The
        entries claimed, oldest first."""
        rows = await self._fetch(
            "UPDATE fraiseql_check_outbox SET claimed_by = $1, claimed_until = $2"
            " WHERE id IN (SELECT id FROM fraiseql_check_outbox WHERE status = 'pending'"
            "   AND check_id = ANY($3::text[]) AND ("
            "   claimed_by = $1 OR (claimed_by IS NULL AND next_attempt_at < $4)"
            f"   OR (claimed_by IS NOT NULL AND {_CLAIMER_GONE}))"
            " ORDER BY created_at, id LIMIT $5 FOR UPDATE SKIP LOCKED)"
            f" RETURNING {_OUTBOX_COLUMNS}",
            member,
            until,
            list(check_ids),
            older_than,
            limit,
        )
        return sorted((outbox_of(tuple(row)) for row in rows), key=lambda e: (e.created_at, e.id))

    async def claim_entries(self, member: str, entry_ids: Sequence[str], until: float) -> set[str]:
        """Claim these pending entries for ``member`` unless a member with a live lease holds
        them; the ids now claimed by ``member``."""
        rows = await self._fetch(
            "UPDATE fraiseql_check_outbox SET claimed_by = $1, claimed_until = $2"
            " WHERE id IN (SELECT id FROM fraiseql_check_outbox WHERE id = ANY($3::text[]) AND status = 'pending'"
            f"   AND (claimed_by IS NULL OR claimed_by = $1 OR {_CLAIMER_GONE})"
            "   FOR UPDATE SKIP LOCKED)"
            " RETURNING id",
            member,
            until,
            list(entry_ids),
        )
        return {str(row[0]) for row in rows}

    async def reset(self) -> bool:
        # A transaction cut off before its COMMIT is rolled back by the server.
        committing, self._committing = self._committing is not None, None
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.terminate()
        return committing

    async def close(self) -> None:
        import asyncio

        conn, self._coordination = self._coordination, None
        if conn is not None:
            conn.terminate()
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
