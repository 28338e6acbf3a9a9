"""Watch mode against a PostgreSQL that goes away: the store buffers, fixtures reconnect."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Callable

import asyncpg

from tests.support.checkdir import CheckDir
from tests.support.services import throwaway_postgres, wait_until
from tests.support.watcher import WatchProcess

Watch = Callable[..., WatchProcess]


def pg(dsn: str, sql: str) -> list[asyncpg.Record]:
    async def main() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(dsn)
        try:
            return list(await conn.fetch(sql))
        finally:
            await conn.close()

    return asyncio.run(main())


def test_stopping_the_postgresql_store_mid_run_loses_no_result(checkdir: CheckDir, watch: Watch) -> None:
    checkdir.write("fraiseql-checks.yaml", "start_jitter: 50ms\n")
    checkdir.write(
        "checks/check_steady.py",
        """
        from fraiseql_checks import check

        @check(interval="100ms")
        def check_one():
            pass

        @check(interval="100ms")
        def check_two():
            assert False, "always failing"
        """,
    )
    with throwaway_postgres() as server:
        watcher = watch("--store", server.dsn)
        watcher.wait_for(lambda s: s.get(("fraiseql_check_store_written_total", ()), 0) >= 10, what="first writes")
        server.stop()
        stopped_at = time.time()
        watcher.wait_for(
            lambda s: (
                s.get(("fraiseql_check_store_up", ())) == 0 and s.get(("fraiseql_check_store_backlog", ()), 0) >= 30
            ),
            what="results to queue while the store is away",
        )
        assert watcher.get("/readyz")[0] == 503
        server.start()
        started_at = time.time()
        watcher.wait_for(
            lambda s: s.get(("fraiseql_check_store_up", ())) == 1 and s.get(("fraiseql_check_store_backlog", ())) == 0,
            what="the queue to drain into the store",
        )
        assert watcher.value("fraiseql_check_store_dropped_total") == 0
        assert watcher.stop() == 0
        match = re.search(r"stopped after (\d+) runs .*: (\d+) stored, 0 dropped, 0 not written", watcher.stdout)
        assert match, watcher.stdout
        runs, written = int(match[1]), int(match[2])
        (results,) = pg(server.dsn, "SELECT count(*) AS n FROM fraiseql_check_results")
        (changes,) = pg(server.dsn, "SELECT count(*) AS n FROM fraiseql_check_state_changes")
        (states,) = pg(server.dsn, "SELECT count(*) AS n FROM fraiseql_check_states")
        assert results["n"] == runs
        assert changes["n"] == 2  # unknown -> passing, unknown -> failing
        assert states["n"] == 2  # the newest state of each check; each state written counts in `written`
        assert written >= results["n"] + changes["n"] + states["n"]
        (during,) = pg(
            server.dsn,
            f"SELECT count(*) AS n FROM fraiseql_check_results WHERE started_at > to_timestamp({stopped_at + 0.2})"
            f" AND started_at < to_timestamp({started_at - 0.2})",
        )
        assert during["n"] >= 10  # the runs made while the server was down are there


def test_a_session_fixture_whose_server_restarted_is_set_up_again(checkdir: CheckDir, watch: Watch) -> None:
    checkdir.write("fraiseql-checks.yaml", "start_jitter: 50ms\n")
    checkdir.write(
        "checks/conftest.py",
        """
        import os
        import asyncpg
        from fraiseql_checks import fixture

        @fixture(scope="session")
        async def conn():
            connection = await asyncpg.connect(os.environ["CHECK_DSN"], timeout=2)
            yield connection
            await connection.close()
        """,
    )
    checkdir.write(
        "checks/check_db.py",
        """
        from fraiseql_checks import check

        @check(interval="100ms", timeout="3s")
        async def check_db(conn):
            assert await conn.fetchval("select 1") == 1
        """,
    )
    check = "checks/check_db.py::check_db"
    with throwaway_postgres() as server:
        watcher = watch(env={"CHECK_DSN": server.dsn})
        watcher.wait_for(lambda s: watcher.runs(check) >= 3, what="passing runs")
        server.stop()
        watcher.wait_for(lambda s: watcher.runs(check, "error") >= 3, what="errors while the server is down")
        assert watcher.value("fraiseql_check_up", check=check) == 0
        server.start()
        passed = watcher.runs(check)
        watcher.wait_for(lambda s: watcher.runs(check) >= passed + 3, what="the check to pass again")
        assert watcher.value("fraiseql_check_up", check=check) == 1
        assert (watcher.value("fraiseql_check_fixture_rebuilds_total", fixture="conn") or 0) >= 1
        assert watcher.stop() == 0
        assert f"{check} failing -> PASSING" in watcher.stdout


def test_sigterm_while_a_store_write_hangs_says_truly_what_was_not_written(checkdir: CheckDir, watch: Watch) -> None:
    """A write blocked by a lock at shutdown: the last line's numbers are the database's."""
    checkdir.write("fraiseql-checks.yaml", "start_jitter: 50ms\n")
    checkdir.write(
        "checks/check_steady.py",
        'from fraiseql_checks import check\n\n@check(interval="100ms")\ndef check_one():\n    pass\n',
    )
    with throwaway_postgres() as server:
        watcher = watch("--store", server.dsn)
        watcher.wait_for(lambda s: s.get(("fraiseql_check_store_written_total", ()), 0) >= 5, what="first writes")

        async def hold_lock_and_stop() -> tuple[int, str]:
            conn = await asyncpg.connect(server.dsn)
            try:
                async with conn.transaction():
                    await conn.execute("LOCK TABLE fraiseql_check_results IN ACCESS EXCLUSIVE MODE")
                    # runs finished after the lock was taken are in no write that could finish
                    locked_at = watcher.runs("checks/check_steady.py::check_one")
                    await asyncio.to_thread(
                        watcher.wait_for,
                        lambda _: watcher.runs("checks/check_steady.py::check_one") >= locked_at + 3,
                        what="runs while the table is locked",
                    )
                    await asyncio.to_thread(watcher.stop)  # the shutdown's last writes wait for the lock
            finally:
                await conn.close()
            return watcher.process.returncode, watcher.stdout

        code, out = asyncio.run(hold_lock_and_stop())
        assert code == 0
        match = re.search(r"stopped after (\d+) runs .*: (\d+) stored, 0 dropped, (\d+) not written", out)
        assert match, out
        runs, not_written = int(match[1]), int(match[3])
        assert not_written > 0  # the shutdown could not write everything, and says so
        assert "were not written" in out
        (results,) = pg(server.dsn, "SELECT count(*) AS n FROM fraiseql_check_results")
        (changes,) = pg(server.dsn, "SELECT count(*) AS n FROM fraiseql_check_state_changes")
        (states,) = pg(server.dsn, "SELECT count(*) AS n FROM fraiseql_check_states")
        # what the last line says was not written is exactly what the database lacks
        assert runs - results["n"] + (1 - changes["n"]) + (1 - states["n"]) <= not_written
        assert results["n"] < runs


def test_a_restart_after_kill_9_keeps_the_state_of_a_failing_check(checkdir: CheckDir, watch: Watch) -> None:
    checkdir.write("fraiseql-checks.yaml", "start_jitter: 50ms\n")
    checkdir.write(
        "checks/check_down.py",
        'from fraiseql_checks import check\n\n@check(interval="100ms")\ndef check_down():\n    assert False\n',
    )
    down = "checks/check_down.py::check_down"
    with throwaway_postgres() as server:
        first = watch("--store", server.dsn)

        def stored_failures() -> int:
            with contextlib.suppress(asyncpg.PostgresError):  # the tables are not made yet
                rows = pg(server.dsn, "SELECT consecutive_failures FROM fraiseql_check_states")
                return int(rows[0]["consecutive_failures"]) if rows else 0
            return 0

        # the store is written about once a second, so what it holds trails the live count: wait
        # for the stored one (not the metric, which can be 10 while the last write said 3)
        wait_until(lambda: stored_failures() >= 5, what="five failures stored")
        first.process.kill()
        first.process.communicate()
        (saved,) = pg(server.dsn, "SELECT consecutive_failures FROM fraiseql_check_states")
        assert saved["consecutive_failures"] >= 5
        second = watch("--store", server.dsn)
        # the check is the dead watcher's until its lease expires (docs/high-availability.md); the
        # second takes it over then, and its first series says failing, as stored, with the
        # stored count of failures going on (not starting again from one)
        first_seen = second.wait_for(
            lambda s: (
                s.get(("fraiseql_check_state", (("check", down),))) is not None
                and [
                    s[("fraiseql_check_state", (("check", down),))],
                    s.get(("fraiseql_check_consecutive_failures", (("check", down),)), 0),
                ]
            ),
            timeout=15,
            what="the check taken over",
        )
        assert first_seen[0] == 1  # failing from the start
        assert first_seen[1] >= saved["consecutive_failures"]
        second.wait_for(
            lambda s: (
                (second.value("fraiseql_check_consecutive_failures", check=down) or 0) > saved["consecutive_failures"]
            )
        )
        assert second.stop() == 0
        changes = pg(server.dsn, "SELECT previous, state FROM fraiseql_check_state_changes")
        assert [(c["previous"], c["state"]) for c in changes] == [("unknown", "failing")]
