"""PostgreSQL: answers, connection use, long and idle transactions, slow statements, rollbacks.

Set ``DATABASE_URL``. Thresholds (``[tool.fraiseql-checks.thresholds]``), with defaults:
``database.answer_max_seconds`` (1), ``database.connections_max_percent`` (90),
``database.transaction_max_seconds`` (300), ``database.idle_in_transaction_max_seconds`` (60),
``database.slow_statement_ms`` (100), ``database.slow_calls_max_percent`` (10),
``database.rollback_max_percent`` (5).
"""

from __future__ import annotations

import pytest

from fraiseql_checks import TargetError, check, record, stopwatch


@check(
    interval="30s",
    severity="critical",
    tags=["database"],
    runbook="docs/runbooks/DatabaseDown.md",
    slo="99.9% / 30d",
    panel={"value": "answer_seconds", "unit": "s", "thresholds": [1]},
)
async def check_database_answers(db, config):
    """The database answers ``select 1`` within 1s (seed alert DatabaseDown)."""
    limit = config.threshold("database.answer_max_seconds")
    with stopwatch() as took:  # time other checks held the event loop is not the database's
        assert await db.fetchval("select 1") == 1
    elapsed = took.seconds
    record("answer_seconds", elapsed)
    assert elapsed <= limit, f"select 1 took {elapsed:.3f}s, above {limit:g}s"


@check(
    interval="1m",
    severity="critical",
    tags=["database"],
    runbook="docs/runbooks/DatabasePoolExhausted.md",
    panel={"value": "connections_used_ratio", "unit": "percentunit", "thresholds": [0.9]},
)
async def check_database_connections(db, config):
    """Connections in use stay at or below 90% of max_connections (seed alert DatabasePoolExhausted)."""
    maximum = config.threshold("database.connections_max_percent")
    row = await db.fetchrow(
        "select (select count(*) from pg_stat_activity where backend_type = 'client backend') as used,"
        " current_setting('max_connections')::int as max"
    )
    ratio = row["used"] / row["max"]
    record("connections_used_ratio", ratio)
    assert 100 * ratio <= maximum, (
        f"{row['used']} of max_connections={row['max']} in use ({100 * ratio:.1f}%), above {maximum:g}%"
    )


def _describe(rows):
    return "; ".join(
        f"pid {r['pid']} ({r['application_name'] or 'no application_name'}, {r['state']}, "
        f"{r['age']:.0f}s): {' '.join((r['query'] or '').split())[:80]}"
        for r in rows[:5]
    )


@check(interval="1m", severity="warning", tags=["database"], runbook="docs/runbooks/LongTransactions.md")
async def check_long_transactions(db, config):
    """No transaction has been open longer than 5 minutes (they hold locks and block vacuum)."""
    limit = config.threshold("database.transaction_max_seconds")
    rows = await db.fetch(
        "select pid, application_name, state, query,"
        " extract(epoch from now() - xact_start)::float8 as age"
        " from pg_stat_activity"
        " where xact_start is not null and pid <> pg_backend_pid() and backend_type = 'client backend'"
        " order by xact_start"
    )
    oldest = rows[0]["age"] if rows else 0.0
    record("oldest_transaction_seconds", oldest)
    long = [r for r in rows if r["age"] > limit]
    assert not long, f"{len(long)} transaction(s) open longer than {limit:g}s: {_describe(long)}"


@check(interval="1m", severity="warning", tags=["database"], runbook="docs/runbooks/LongTransactions.md")
async def check_idle_in_transaction(db, config):
    """No session sits "idle in transaction" longer than 60s (a client that forgot to commit)."""
    limit = config.threshold("database.idle_in_transaction_max_seconds")
    rows = await db.fetch(
        "select pid, application_name, state, query,"
        " extract(epoch from now() - state_change)::float8 as age"
        " from pg_stat_activity"
        " where state in ('idle in transaction', 'idle in transaction (aborted)')"
        " order by state_change"
    )
    idle = [r for r in rows if r["age"] > limit]
    record("idle_in_transaction_sessions", len(idle))
    assert not idle, f"{len(idle)} session(s) idle in transaction longer than {limit:g}s: {_describe(idle)}"


@check(
    interval="5m",
    severity="warning",
    tags=["database"],
    runbook="docs/runbooks/SlowQueryRate.md",
    panel={"value": "slow_call_ratio", "unit": "percentunit", "thresholds": [0.1]},
)
async def check_slow_statements(db, config):
    """At most 10% of statement calls belong to statements averaging over 100ms (pg_stat_statements;
    seed alert SlowQueryRate)."""
    slow_ms = config.threshold("database.slow_statement_ms")
    maximum = config.threshold("database.slow_calls_max_percent")
    installed = await db.fetchval("select 1 from pg_extension where extname = 'pg_stat_statements'")
    if not installed:
        pytest.skip("the pg_stat_statements extension is not installed: create extension pg_stat_statements")
    try:
        rows = await db.fetch(
            "select query, calls, mean_exec_time from pg_stat_statements"
            " where dbid = (select oid from pg_database where datname = current_database())"
            " order by mean_exec_time desc"
        )
    except TargetError as exc:
        if "shared_preload_libraries" in str(exc):
            pytest.skip("pg_stat_statements is not loaded: add it to shared_preload_libraries and restart")
        raise
    total = sum(r["calls"] for r in rows)
    if not total:
        pytest.skip("pg_stat_statements has recorded no statement yet")
    slow = [r for r in rows if r["mean_exec_time"] > slow_ms]
    ratio = sum(r["calls"] for r in slow) / total
    record("slow_call_ratio", ratio)
    worst = "; ".join(
        f"{r['mean_exec_time']:.0f}ms x{r['calls']}: {' '.join(r['query'].split())[:80]}" for r in slow[:5]
    )
    assert 100 * ratio <= maximum, (
        f"{100 * ratio:.1f}% of calls are statements averaging over {slow_ms:g}ms (above {maximum:g}%): {worst}"
    )


@check(
    interval="5m",
    severity="warning",
    tags=["database"],
    runbook="docs/runbooks/HighRollbackRate.md",
    panel={"value": "rollback_ratio", "unit": "percentunit", "thresholds": [0.05]},
)
async def check_rollback_ratio(db, config):
    """Rolled-back transactions stay at or below 5% of all transactions (pg_stat_database)."""
    maximum = config.threshold("database.rollback_max_percent")
    row = await db.fetchrow(
        "select xact_commit, xact_rollback from pg_stat_database where datname = current_database()"
    )
    total = row["xact_commit"] + row["xact_rollback"]
    if not total:
        pytest.skip("no transaction recorded in pg_stat_database yet")
    ratio = row["xact_rollback"] / total
    record("rollback_ratio", ratio)
    assert 100 * ratio <= maximum, (
        f"{row['xact_rollback']} of {total} transactions rolled back ({100 * ratio:.1f}%), above {maximum:g}%"
    )
