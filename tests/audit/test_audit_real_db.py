"""The audit code on the real ``db`` fixture's ``Database``: its connection wrapper, cursor and errors.

The CLI tests (test_audit_checks.py, test_audit_report.py) run the shipped checks with
the real ``db`` fixture too; these cover what the wrapper adds under them.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from typing import Any

import asyncpg
import pytest

from fraiseql_checks.audit import Audit, AuditUnsupported
from fraiseql_checks.audit.layout import PATTERN_NAMES, layout_of
from fraiseql_checks.audit.patterns import DEFAULT_PATTERNS, database_error
from fraiseql_checks.audit.reader import Reader, Scope
from fraiseql_checks.errors import TargetError
from fraiseql_checks.targets.database import Database
from fraiseql_checks.trace import RunContext, current_run
from tests.audit.audit_db import AuditDatabase, insert_v2, run, v2_event


def ago(seconds: float) -> dt.datetime:
    return dt.datetime.now(dt.UTC) - dt.timedelta(seconds=seconds)


def test_the_cursor_sends_the_traceparent(v2: AuditDatabase) -> None:
    async def main() -> tuple[str, list[int]]:
        database = Database(v2.dsn, pool_size=1)
        token = current_run.set(RunContext(None, None, "0" * 31 + "1", "0" * 15 + "2"))
        try:
            async with database.acquire() as conn, conn.transaction():
                texts = [row["q"] async for row in conn.cursor("SELECT current_query() AS q")]
                numbers = [row["n"] async for row in conn.cursor("SELECT generate_series(1, $1) AS n", 5, prefetch=2)]
        finally:
            current_run.reset(token)
            await database.close()
        return texts[0], numbers

    text, numbers = run(main())
    assert text.startswith("/* traceparent='00-" + "0" * 31 + "1-" + "0" * 15 + "2-01' */ SELECT current_query()")
    assert numbers == [1, 2, 3, 4, 5]


def test_the_cursor_translates_the_database_faults(v2: AuditDatabase) -> None:
    async def main() -> None:
        database = Database(v2.dsn, pool_size=1)
        try:
            async with database.acquire() as conn, conn.transaction():
                with pytest.raises(TargetError, match='relation "no_such_table" does not exist') as caught:
                    async for _ in conn.cursor("SELECT * FROM no_such_table"):
                        pass
                assert isinstance(caught.value.__cause__, asyncpg.UndefinedTableError)
            async with database.acquire() as conn, conn.transaction():
                with pytest.raises(asyncpg.PostgresSyntaxError):  # the check's own SQL: asyncpg's error
                    async for _ in conn.cursor("SELEC 1"):
                        pass
        finally:
            await database.close()

    run(main())


def test_stream_and_python_chain_on_the_real_database(v2: AuditDatabase, v1: AuditDatabase) -> None:
    run(v2.with_conn(lambda conn: insert_v2(conn, [v2_event(ago(10 + i)) for i in range(7)])))

    async def stream(audit: Audit) -> int:
        return len([row async for row in audit.events().stream("id", batch=3)])

    assert v2.use(stream) == 7

    async def verify(audit: Audit) -> Any:
        return await audit.verify_chain(method="python")

    report = v1.use(verify)
    assert report.method == "python" and report.intact


def test_database_errors_behind_a_target_error() -> None:
    cause = asyncpg.UndefinedColumnError("column x does not exist")
    try:
        raise TargetError("database h:5432/d: column x does not exist") from cause
    except TargetError as exc:
        wrapped = exc
    assert database_error(wrapped, asyncpg.UndefinedColumnError) is cause
    assert database_error(wrapped, asyncpg.PostgresError) is cause
    assert database_error(cause, asyncpg.UndefinedColumnError) is cause
    assert database_error(wrapped, asyncpg.UndefinedTableError) is None
    assert database_error(TargetError("timed out"), asyncpg.PostgresError) is None
    assert database_error(ValueError("x"), asyncpg.PostgresError) is None


def test_write_delay_without_created_at_is_unsupported(v2: AuditDatabase) -> None:
    """A v2 table missing ``created_at``: the real fixture's TargetError still becomes AuditUnsupported."""
    run(v2.execute("ALTER TABLE audit_log RENAME COLUMN created_at TO written_at"))
    try:

        async def work(audit: Audit) -> None:
            with pytest.raises(AuditUnsupported, match="has no created_at column here: column"):
                await audit.write_delay("5m")

        v2.use(work)
    finally:
        run(v2.execute("ALTER TABLE audit_log RENAME COLUMN written_at TO created_at"))


def test_a_raw_asyncpg_pool_still_serves(v2: AuditDatabase) -> None:
    """A project's own ``db`` fixture may be a plain asyncpg pool (the benchmark's is)."""
    run(v2.with_conn(lambda conn: insert_v2(conn, [v2_event(ago(10 + i)) for i in range(4)])))

    async def main() -> tuple[int, Any]:
        pool = await asyncpg.create_pool(v2.dsn, min_size=1, max_size=2)
        try:
            audit = Audit(Reader(pool, Scope()), layout_of(v2.profile))
            streamed = len([row async for row in audit.events().stream(batch=2)])
            return streamed, await audit.writers([v2.auditor])
        finally:
            await pool.close()

    streamed, writers = run(main())
    assert streamed == 4
    assert writers.active is None and writers.note is not None


def test_patterns_names_agree_and_config_parsing_stays_light() -> None:
    assert all(tuple(filters) == PATTERN_NAMES for filters in DEFAULT_PATTERNS.values())
    code = (
        "import sys\n"
        "from fraiseql_checks.audit.plugin import _as_patterns\n"
        "_as_patterns({'failed_logins': {'status': ['failure', 'denied'], 'event_type': 'auth*'}})\n"
        "heavy = {'asyncpg', 'fraiseql_checks.audit.patterns', 'fraiseql_checks.audit.chain'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
