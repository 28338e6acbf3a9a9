"""The ``db`` fixture and the health suite's database checks, against real PostgreSQL servers."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import asyncpg
import pytest

from fraiseql_checks.errors import TargetError
from fraiseql_checks.targets.database import Database
from tests.support import REPO
from tests.support.checkdir import CheckDir
from tests.support.neighbours import outcomes_of, write_neighbours
from tests.support.services import PG_DSN, ThrowawayPostgres, taking_no_connection, throwaway_postgres

CHECKS = str(REPO / "checks" / "health" / "check_database.py")
SHARED_DSN = PG_DSN


@pytest.fixture(scope="module")
def pg() -> Iterator[ThrowawayPostgres]:
    with throwaway_postgres(preload="pg_stat_statements") as server:
        yield server


# Latency under a busy CI machine is not what these tests are about.
LENIENT = "paths: [.]\nthresholds:\n  database.answer_max_seconds: 5\n"


def run_health(checkdir: CheckDir, dsn: str, *args: str, config: str = LENIENT):  # type: ignore[no-untyped-def]
    checkdir.write("fraiseql-checks.yaml", config)
    result, report = checkdir.run_json("-c", "fraiseql-checks.yaml", CHECKS, *args, env={"DATABASE_URL": dsn})
    return result, {r["name"]: r for r in report["results"]}


def test_suite_passes_on_a_quiet_server(checkdir: CheckDir, pg: ThrowawayPostgres) -> None:
    pg.psql("create extension if not exists pg_stat_statements")
    pg.psql("select pg_stat_statements_reset()")
    result, results = run_health(checkdir, pg.dsn)
    outcomes = {name: r["outcome"] for name, r in results.items()}
    assert result.ret == 0, result.stdout
    assert set(outcomes.values()) == {"passed"}, outcomes
    assert 0 < results["check_database_connections"]["values"]["connections_used_ratio"] < 1
    assert results["check_database_answers"]["values"]["answer_seconds"] > 0
    assert results["check_slow_statements"]["values"] == {"slow_call_ratio": 0.0}


def test_the_shared_server_answers(checkdir: CheckDir) -> None:
    """The machine's own server (shared with other work, so only the checks its neighbours cannot upset)."""
    _, results = run_health(checkdir, SHARED_DSN, "-k", "answers or connections")
    assert {name: r["outcome"] for name, r in results.items()} == {
        "check_database_answers": "passed",
        "check_database_connections": "passed",
    }


def test_queries_carry_the_traceparent_and_application_name(checkdir: CheckDir) -> None:
    checkdir.write(
        "check_traced.py",
        """
        import asyncio

        async def check_sends_traceparent(db, request):
            row = await db.fetchrow("select current_query() as q, current_setting('application_name') as app")
            assert row["app"] == "fraiseql-checks"
            assert row["q"] == f"/* traceparent='{request.traceparent}' */ select current_query() as q, " \\
                "current_setting('application_name') as app"

        async def check_slow_query(db):
            await db.execute("select pg_sleep(1.5) /* the slow one */")

        async def check_sees_the_slow_query(db, request):
            for _ in range(100):
                query = await db.fetchval(
                    "select query from pg_stat_activity where application_name = 'fraiseql-checks'"
                    " and query like '%the slow one%' and pid <> pg_backend_pid()"
                )
                if query:
                    request.node.module.SEEN = query
                    break
                await asyncio.sleep(0.02)
            assert query, "the slow query never showed up in pg_stat_activity"
            print(query)
            raise AssertionError(query)  # report the text so the test can read it
        """,
    )
    _result, report = checkdir.run_json("check_traced.py", env={"DATABASE_URL": SHARED_DSN})
    results = {r["name"]: r for r in report["results"]}
    assert results["check_sends_traceparent"]["outcome"] == "passed", results["check_sends_traceparent"]["message"]
    # Another session sees the slow query in pg_stat_activity, tagged with its check's trace id.
    seen = results["check_sees_the_slow_query"]["message"]
    slow_trace = results["check_slow_query"]["trace_id"]
    assert f"/* traceparent='00-{slow_trace}-" in seen


def test_database_down_fails_then_recovers(checkdir: CheckDir) -> None:
    with throwaway_postgres() as server:
        args = ("-k", "answers")
        result, results = run_health(checkdir, server.dsn, *args)
        assert results["check_database_answers"]["outcome"] == "passed"
        server.stop()
        result, results = run_health(checkdir, server.dsn, *args)
        answers = results["check_database_answers"]
        assert answers["outcome"] == "failed"
        assert answers["message"] == f"database 127.0.0.1:{server.port}/postgres: connection refused"
        assert "Traceback" not in result.stdout
        result.fnmatch_lines([f"E   database 127.0.0.1:{server.port}/postgres: connection refused"])
        server.start()
        result, results = run_health(checkdir, server.dsn, *args)
        assert results["check_database_answers"]["outcome"] == "passed"


def test_one_pool_survives_a_restart() -> None:
    """Within one session (watch mode), the pool reconnects once the server is back."""
    with throwaway_postgres() as server:

        async def scenario() -> list[str]:
            database = Database(server.dsn, connect_timeout=3)
            seen = []
            try:
                seen.append(str(await database.fetchval("select 'up'")))
                server.stop()
                for _ in range(2):
                    with pytest.raises(TargetError) as info:
                        await database.fetchval("select 1")
                    seen.append(str(info.value))
                server.start()
                seen.append(str(await database.fetchval("select 'up again'")))
            finally:
                await database.close()
            return seen

        seen = asyncio.run(scenario())
    where = f"database 127.0.0.1:{server.port}/postgres"
    assert seen[0] == "up"
    assert seen[1].startswith(f"{where}: connection lost: ") or seen[1] == f"{where}: connection refused"
    assert seen[2] == f"{where}: connection refused"
    assert seen[3] == "up again"


def test_a_server_shutting_down_under_concurrent_queries_is_blamed_for_every_error() -> None:
    """Queries that meet the shutdown get the server's fault, whatever state it left their
    connection in: a connection that read half an error came back from the pool and the
    next statement on it raised asyncpg's ``InternalClientError`` ("another operation is
    in progress"), which a watcher took for the check's own fault (its failure then was
    not put down to the database being unreachable)."""
    errors: list[BaseException] = []
    with throwaway_postgres() as server:
        for _attempt in range(4):

            async def scenario() -> None:
                database = Database(server.dsn, connect_timeout=3)
                try:
                    await asyncio.gather(*(database.fetchval("select 1") for _ in range(5)))
                    stopping = threading.Thread(target=server.stop)
                    stopping.start()
                    while stopping.is_alive():
                        found = await asyncio.gather(
                            *(database.fetchval("select 1") for _ in range(5)), return_exceptions=True
                        )
                        errors.extend(error for error in found if isinstance(error, BaseException))
                        await asyncio.sleep(0.005)
                    stopping.join()
                finally:
                    await database.close()

            asyncio.run(scenario())
            server.start()
    assert errors  # the shutdown was met
    wrong = {f"{type(error).__name__}: {error}" for error in errors if not isinstance(error, TargetError)}
    assert not wrong
    assert all(error.unreachable and error.target == "database" for error in errors)  # type: ignore[attr-defined]


def test_wrong_password_is_one_masked_line(checkdir: CheckDir) -> None:
    with throwaway_postgres(password="right-password-81c") as server:
        dsn = server.dsn.replace("right-password-81c", "wrong-password-77d")
        result, results = run_health(checkdir, dsn, "-k", "answers")
        answers = results["check_database_answers"]
        assert answers["outcome"] == "failed"
        assert answers["message"] == (
            f"database 127.0.0.1:{server.port}/postgres: wrong credentials: "
            'password authentication failed for user "postgres"'
        )
        everything = result.stdout + result.stderr + (checkdir.path / "report.json").read_text()
        assert "wrong-password-77d" not in everything
        result, results = run_health(checkdir, server.dsn, "-k", "answers")
        assert results["check_database_answers"]["outcome"] == "passed"


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("select count(*) from no_such_table", 'relation "no_such_table" does not exist'),
        ("select count(*) from pg_stat_statements", 'relation "pg_stat_statements" does not exist'),
        ("select gen_random_uuid_v9()", "function gen_random_uuid_v9() does not exist"),
    ],
)
def test_missing_table_or_extension_is_one_line(checkdir: CheckDir, sql: str, reason: str) -> None:
    checkdir.write("check_items.py", f'async def check_items(db):\n    assert await db.fetchval("{sql}")\n')
    result, report = checkdir.run_json("check_items.py", env={"DATABASE_URL": SHARED_DSN})
    (items,) = report["results"]
    assert items["outcome"] == "failed"
    assert items["message"] == f"database 127.0.0.1:5432/test: {reason} (in: {sql})"
    assert "Traceback" not in result.stdout


def test_slow_statements_skip_when_the_extension_is_not_loaded(checkdir: CheckDir) -> None:
    with throwaway_postgres() as server:  # no shared_preload_libraries
        server.psql("create extension pg_stat_statements")
        _, results = run_health(checkdir, server.dsn, "-k", "slow")
    assert results["check_slow_statements"]["outcome"] == "skipped"
    assert results["check_slow_statements"]["message"] == (
        "pg_stat_statements is not loaded: add it to shared_preload_libraries and restart"
    )


def test_an_sql_mistake_in_the_check_keeps_its_traceback(checkdir: CheckDir) -> None:
    checkdir.write("check_typo.py", "async def check_typo(db):\n    await db.fetch('selec 1')\n")
    result, report = checkdir.run_json("check_typo.py", env={"DATABASE_URL": SHARED_DSN})
    (typo,) = report["results"]
    assert typo["outcome"] == "error"
    assert typo["message"].startswith("PostgresSyntaxError: syntax error at or near")
    result.fnmatch_lines(["*check_typo.py:2: in check_typo*"])


def test_slow_statements_from_pg_stat_statements(checkdir: CheckDir, pg: ThrowawayPostgres) -> None:
    pg.psql("create extension if not exists pg_stat_statements")
    pg.psql("select pg_stat_statements_reset()")
    for _ in range(3):
        pg.psql("select pg_sleep(0.15)")
    thresholds = "thresholds:\n  database.slow_calls_max_percent: 1\n"
    _result, results = run_health(checkdir, pg.dsn, "-k", "slow", config=thresholds)
    slow = results["check_slow_statements"]
    assert slow["outcome"] == "failed"
    assert "of calls are statements averaging over 100ms (above 1%)" in slow["message"]
    assert "select pg_sleep($1)" in slow["message"]
    assert slow["values"]["slow_call_ratio"] > 0.01


def test_slow_statements_skip_without_the_extension(checkdir: CheckDir, pg: ThrowawayPostgres) -> None:
    pg.psql("drop extension if exists pg_stat_statements")
    _result, results = run_health(checkdir, pg.dsn, "-k", "slow")
    assert results["check_slow_statements"]["outcome"] == "skipped"
    assert results["check_slow_statements"]["message"] == (
        "the pg_stat_statements extension is not installed: create extension pg_stat_statements"
    )


def test_long_and_idle_transactions(checkdir: CheckDir, pg: ThrowawayPostgres) -> None:
    async def hold_then_check() -> dict[str, dict]:  # type: ignore[type-arg]
        holder = await asyncpg.connect(pg.dsn, server_settings={"application_name": "forgetful-worker"})
        try:
            await holder.execute("begin; select 1")
            await asyncio.sleep(1.2)  # let the transaction age past the thresholds below
            thresholds = (
                "thresholds:\n  database.transaction_max_seconds: 1\n  database.idle_in_transaction_max_seconds: 1\n"
            )
            _, results = await asyncio.to_thread(run_health, checkdir, pg.dsn, "-k", "long or idle", config=thresholds)
            return results
        finally:
            await holder.close()

    results = asyncio.run(hold_then_check())
    long = results["check_long_transactions"]
    idle = results["check_idle_in_transaction"]
    assert long["outcome"] == "failed"
    assert long["message"].startswith("1 transaction(s) open longer than 1s: pid ")
    assert "(forgetful-worker, idle in transaction, " in long["message"]
    assert idle["outcome"] == "failed"
    assert idle["message"].startswith("1 session(s) idle in transaction longer than 1s: pid ")
    assert idle["values"] == {"idle_in_transaction_sessions": 1.0}


def test_connections_and_rollbacks_against_thresholds(checkdir: CheckDir, pg: ThrowawayPostgres) -> None:
    for _ in range(5):
        pg.psql("begin; select 1; rollback")
    thresholds = "thresholds:\n  database.connections_max_percent: 0.1\n  database.rollback_max_percent: 0.1\n"
    _, results = run_health(checkdir, pg.dsn, "-k", "connections or rollback", config=thresholds)
    connections = results["check_database_connections"]
    assert connections["outcome"] == "failed"
    assert " of max_connections=100 in use (" in connections["message"]
    assert connections["message"].splitlines()[0].endswith("%), above 0.1%")
    rollbacks = results["check_rollback_ratio"]
    assert rollbacks["outcome"] == "failed"
    assert "transactions rolled back" in rollbacks["message"]
    _result, results = run_health(checkdir, pg.dsn, "-k", "connections")
    assert results["check_database_connections"]["outcome"] == "passed"


def test_a_query_timeout_is_not_called_a_connection_timeout() -> None:
    async def scenario() -> str:
        db = Database(SHARED_DSN)
        try:
            await db.fetchval("select pg_sleep(2)", timeout=0.3)
        except TargetError as exc:
            return str(exc)
        finally:
            await db.close()
        return "no error"

    assert asyncio.run(scenario()) == "database 127.0.0.1:5432/test: the query timed out (in: select pg_sleep(2))"


def test_a_connection_made_while_a_neighbour_holds_the_loop_does_not_time_out(checkdir: CheckDir) -> None:
    """The connect limit is 1 s; another check holds the event loop for 1.5 s while the
    connection is opened. The timer and the server's answer come due in the same turn once
    the loop is free; the neighbour's hold is given back, so the query succeeds."""
    write_neighbours(
        checkdir,
        f"database:\n  dsn: {SHARED_DSN}\n  connect_timeout: 1s\n",
        "db",
        'db.fetchval("select 1")',
        "assert value == 1",
    )
    result, report = checkdir.run_json()
    outcomes = outcomes_of(report)
    assert outcomes["check_waits"] == ("passed", ""), result.stdout
    assert "check_holds_the_loop held the event loop for 1." in result.stdout  # the hold happened, and was seen


def test_a_connect_slow_by_itself_times_out_even_while_a_neighbour_holds_the_loop(checkdir: CheckDir) -> None:
    """A server that takes the connection but never answers: the connect times out on its own second."""
    with taking_no_connection() as port:
        write_neighbours(
            checkdir,
            f"database:\n  dsn: postgresql://postgres@127.0.0.1:{port}/test\n  connect_timeout: 1s\n",
            "db",
            'db.fetchval("select 1")',
        )
        result, report = checkdir.run_json()
    outcomes = outcomes_of(report)
    assert outcomes["check_waits"] == (
        "failed",
        f"database 127.0.0.1:{port}/test: timed out connecting after 1s",
    ), result.stdout
    assert "check_holds_the_loop held the event loop for 1." in result.stdout


def test_the_connect_limit_is_the_checks_own_not_asyncpgs(monkeypatch: pytest.MonkeyPatch) -> None:
    """asyncpg's own connect limit is only a backstop: put out of reach, a connect to a
    server that never answers still times out after the 1 s ``connect_timeout``."""
    monkeypatch.setattr("fraiseql_checks.targets.database.own_timeout_backstop", lambda seconds: 60.0)

    async def scenario(port: int) -> str:
        db = Database(f"postgresql://postgres@127.0.0.1:{port}/test", connect_timeout=1)
        try:
            await db.fetchval("select 1")
        except TargetError as exc:
            return str(exc)
        finally:
            await db.close()
        return "no error"

    with taking_no_connection() as port:
        # asyncpg's backstop would say the same words after 60 s: 10 s tells the two apart
        outcome = asyncio.run(asyncio.wait_for(scenario(port), 10))
        assert outcome == f"database 127.0.0.1:{port}/test: timed out connecting after 1s"
