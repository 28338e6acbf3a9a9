"""What a hostile or broken check cannot do to the watcher: it runs in a worker process.

Each case starts a real ``fraiseql-check --watch`` on checks written to misbehave
(exiting the process, spinning in C, eating memory, forking, flooding output) and
shows that the watcher keeps serving, says what happened, replaces the worker,
isolates the culprit, and that every other check goes on.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import time
from collections.abc import Callable

import psutil

from fraiseql_checks.stores import sqlite_writer
from tests.support.checkdir import CheckDir
from tests.support.neighbours import write_blpop_neighbours
from tests.support.services import wait_until
from tests.support.watcher import WatchProcess

Watch = Callable[..., WatchProcess]
FAST = "start_jitter: 50ms\n"
HEALTHY = 'from fraiseql_checks import check\n\n@check(interval="100ms")\ndef check_healthy():\n    pass\n'
HEALTHY_ID = "checks/check_healthy.py::check_healthy"


def stored(checkdir: CheckDir, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(checkdir.path / ".fraiseql-checks" / "results.db") as conn:
        return conn.execute(sql).fetchall()


def messages_of(checkdir: CheckDir, check_id: str, outcome: str = "error") -> list[str]:
    rows = stored(checkdir, f"SELECT message FROM results WHERE check_id = '{check_id}' AND outcome = '{outcome}'")
    return [str(row[0]) for row in rows]


def test_sys_exit_and_keyboard_interrupt_in_checks_are_errors_and_the_watcher_goes_on(
    checkdir: CheckDir, watch: Watch
) -> None:
    checkdir.write("fraiseql-checks.yaml", FAST)
    checkdir.write(
        "checks/check_exits.py",
        """
        import sys
        from fraiseql_checks import check

        @check(interval="100ms")
        def check_exit():
            sys.exit(0)

        @check(interval="100ms")
        async def check_interrupt():
            raise KeyboardInterrupt
        """,
    )
    checkdir.write("checks/check_healthy.py", HEALTHY)
    watcher = watch()
    exit_id, interrupt_id = "checks/check_exits.py::check_exit", "checks/check_exits.py::check_interrupt"
    watcher.wait_for(
        lambda s: watcher.runs(exit_id, "error") >= 3 and watcher.runs(interrupt_id, "error") >= 3,
        what="three errors of each",
    )
    assert watcher.process.poll() is None  # still watching
    assert watcher.value("fraiseql_check_worker_restarts_total", worker="1", reason="exited") is None
    # the healthy check goes on beside them: three more runs from here, none an error (it
    # may be a run or two behind at this point: its first run was spread by the jitter)
    healthy = watcher.runs(HEALTHY_ID)
    watcher.wait_for(lambda s: watcher.runs(HEALTHY_ID) >= healthy + 3, what="three more runs of the healthy check")
    assert watcher.runs(HEALTHY_ID, "error") == 0
    assert watcher.stop() == 0
    assert "SystemExit(0) raised" in messages_of(checkdir, exit_id)[0]
    assert "KeyboardInterrupt raised by the check" in messages_of(checkdir, interrupt_id)[0]


def test_a_check_that_cancels_its_own_task_is_an_error_at_every_run_not_a_silent_check(
    checkdir: CheckDir, watch: Watch
) -> None:
    """Its worker took the cancellation for the watcher's and sent no result: the check
    had no run, no state and no series, and nothing said so. Now each run is an error
    result (one whose fixture's teardown cancels its task too), and a check that cancels
    its task and returns is counted as it returned."""
    checkdir.write("fraiseql-checks.yaml", FAST)
    checkdir.write(
        "checks/check_cancels.py",
        """
        import asyncio
        from fraiseql_checks import check, fixture

        @check(interval="100ms")
        async def check_cancels_itself():
            asyncio.current_task().cancel()
            await asyncio.sleep(0)

        @check(interval="100ms")
        async def check_cancels_and_returns():
            asyncio.current_task().cancel()

        @fixture
        async def cancelling_teardown():
            yield 1
            asyncio.current_task().cancel()
            await asyncio.sleep(0)

        @check(interval="100ms")
        async def check_with_a_cancelling_teardown(cancelling_teardown):
            pass
        """,
    )
    checkdir.write("checks/check_healthy.py", HEALTHY)
    watcher = watch()
    cancels_id = "checks/check_cancels.py::check_cancels_itself"
    returns_id = "checks/check_cancels.py::check_cancels_and_returns"
    teardown_id = "checks/check_cancels.py::check_with_a_cancelling_teardown"
    watcher.wait_for(
        lambda s: (
            watcher.runs(cancels_id, "error") >= 3
            and watcher.runs(returns_id, "passed") >= 3
            and watcher.runs(teardown_id, "error") >= 3
        ),
        what="three errors of the first and third, three passes of the second",
    )
    assert watcher.value("fraiseql_check_up", check=cancels_id) == 0
    healthy = watcher.runs(HEALTHY_ID)
    watcher.wait_for(lambda s: watcher.runs(HEALTHY_ID) >= healthy + 3, what="three more runs of the healthy check")
    assert watcher.runs(HEALTHY_ID, "error") == 0 and watcher.runs(returns_id, "error") == 0
    assert watcher.stop() == 0
    assert "its task was cancelled by the check's own code" in messages_of(checkdir, cancels_id)[0]
    assert "teardown of fixture 'cancelling_teardown' failed: CancelledError" in messages_of(checkdir, teardown_id)[0]


def test_a_check_that_cancels_every_task_or_stops_the_loop_harms_neither_its_worker_nor_the_others(
    checkdir: CheckDir, watch: Watch
) -> None:
    """``for task in asyncio.all_tasks(): task.cancel()`` in a check (from the loop, and
    from a ``def`` check's thread) cancelled the worker's own tasks, and ``loop.stop()``
    stopped its loop: the worker exited with code 1 at every run of them, was restarted
    with a growing pause, the checks themselves passed and were never isolated, and
    their neighbours' runs were errors. Now another check's task and the worker's own
    are not a check's to cancel, and ``loop.stop()`` in a check is an error of that check:
    the worker goes on, every other check passes."""
    checkdir.write("fraiseql-checks.yaml", FAST)
    checkdir.write(
        "checks/check_cancels_all.py",
        """
        import asyncio
        from fraiseql_checks import check

        loops = []

        @check(interval="100ms")
        async def check_cancels_every_task():
            loops[:] = [asyncio.get_running_loop()]
            me = asyncio.current_task()
            for task in asyncio.all_tasks():
                if task is not me:
                    task.cancel()

        @check(interval="100ms")
        def check_cancels_every_task_from_its_thread():
            for loop in loops:
                for task in asyncio.all_tasks(loop):
                    loop.call_soon_threadsafe(task.cancel)

        @check(interval="100ms")
        async def check_stops_the_loop():
            asyncio.get_running_loop().stop()

        @check(interval="100ms")
        def check_stops_the_loop_from_its_thread():
            for loop in loops:
                loop.call_soon_threadsafe(loop.stop)

        @check(interval="100ms")
        async def check_stops_the_loop_from_an_executor():  # a thread outside any run: the loop runs on
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, loop.call_soon_threadsafe, loop.stop)

        @check(interval="100ms")
        async def check_sleeps_beside_them():
            await asyncio.sleep(0.05)
        """,
    )
    checkdir.write("checks/check_healthy.py", HEALTHY)
    watcher = watch("--workers", "1")
    prefix = "checks/check_cancels_all.py::"
    ids = [prefix + name for name in ("check_cancels_every_task", "check_cancels_every_task_from_its_thread")]
    ids.append(prefix + "check_stops_the_loop_from_its_thread")  # refused in a callback: logged, not its error
    ids.append(prefix + "check_stops_the_loop_from_an_executor")
    sleeper_id, stopper_id = prefix + "check_sleeps_beside_them", prefix + "check_stops_the_loop"
    watcher.wait_for(
        lambda s: (
            all(watcher.runs(check_id, "passed") >= 5 for check_id in [*ids, sleeper_id, HEALTHY_ID])
            and watcher.runs(stopper_id, "error") >= 5
        ),
        what="five passes of each check, five errors of the one stopping the loop",
    )
    assert watcher.value("fraiseql_check_worker_restarts_total", worker="1", reason="exited") is None
    assert all(watcher.runs(check_id, "error") == 0 for check_id in [*ids, sleeper_id, HEALTHY_ID])
    assert watcher.stop() == 0
    assert "RuntimeError: loop.stop() called by a check" in messages_of(checkdir, stopper_id)[0]


def test_a_check_that_ends_its_worker_is_an_error_and_isolated_the_others_go_on(
    checkdir: CheckDir, watch: Watch
) -> None:
    checkdir.write("fraiseql-checks.yaml", FAST)
    checkdir.write(
        "checks/check_exits.py",
        """
        import os
        from fraiseql_checks import check

        @check(interval="200ms")
        def check_os_exit():
            os._exit(0)
        """,
    )
    checkdir.write("checks/check_healthy.py", HEALTHY)
    watcher = watch("--workers", "1")
    culprit = "checks/check_exits.py::check_os_exit"
    watcher.wait_for(lambda s: watcher.runs(culprit, "error") >= 3, what="three errors of the culprit")
    assert watcher.value("fraiseql_check_isolated", check=culprit) == 1
    assert (watcher.value("fraiseql_check_worker_restarts_total", worker="isolated-1", reason="exited") or 0) >= 1
    restarts = watcher.value("fraiseql_check_worker_restarts_total", worker="1", reason="exited")
    assert restarts == 1  # isolated after the first time: worker 1 is not hit again
    before = watcher.runs(HEALTHY_ID)
    watcher.wait_for(lambda s: watcher.runs(HEALTHY_ID) >= before + 5, what="the healthy check to go on")
    assert watcher.runs(HEALTHY_ID, "error") == 0
    assert watcher.stop() == 0
    message = messages_of(checkdir, culprit)[0]
    assert (
        message
        == "the worker process running this check exited with code 0 (os._exit(0) in the check); it was replaced"
    )
    assert "from now on it runs in a worker process of its own" in watcher.stdout


def test_a_check_spinning_in_c_gets_its_worker_replaced_while_the_watcher_keeps_answering(
    checkdir: CheckDir, watch: Watch
) -> None:
    checkdir.write("fraiseql-checks.yaml", FAST)
    checkdir.write(
        "checks/check_spins.py",
        """
        import re
        from fraiseql_checks import check

        @check(interval="1h", timeout="3s")
        async def check_backtracks():
            re.match(r"(a+)+$", "a" * 40 + "b")   # holds the GIL for ages: no signal gets in
        """,
    )
    # a neighbour with a shorter timeout is running too: it must not be blamed
    checkdir.write("checks/check_healthy.py", HEALTHY.replace('interval="100ms"', 'interval="100ms", timeout="1s"'))
    watcher = watch("--workers", "1")
    culprit = "checks/check_spins.py::check_backtracks"
    start = time.monotonic()
    answered = 0
    while watcher.runs(culprit, "error") < 1:
        assert time.monotonic() - start < 60, "the spinning worker was not replaced"
        assert watcher.get("/healthz") == (200, "ok\n")  # the watcher itself never stops answering
        answered += 1
        time.sleep(0.2)
    assert answered >= 10  # the worker was stuck for seconds, /healthz answered throughout
    assert watcher.value("fraiseql_check_worker_restarts_total", worker="1", reason="unresponsive") == 1
    before = watcher.runs(HEALTHY_ID)
    watcher.wait_for(lambda s: watcher.runs(HEALTHY_ID) >= before + 3, what="the healthy check to go on")
    assert watcher.stop() == 0
    (message,) = messages_of(checkdir, culprit)
    assert message.startswith(
        f"the worker process running this check stopped answering: its event loop was held by {culprit} for"
    )
    assert messages_of(checkdir, HEALTHY_ID) == []  # retried on the new worker, never blamed
    assert f"{culprit} made worker 1 end" in watcher.stdout


def test_a_worker_growing_past_the_memory_limit_is_replaced(checkdir: CheckDir, watch: Watch) -> None:
    checkdir.write("fraiseql-checks.yaml", FAST + "worker_memory_limit: 300MiB\n")
    checkdir.write(
        "checks/check_memory.py",
        """
        import asyncio
        from fraiseql_checks import check

        hoard = []

        @check(interval="1h", timeout="30s")
        async def check_hoards():
            hoard.append(bytearray(400 * 2**20))
            await asyncio.sleep(20)
        """,
    )
    checkdir.write("checks/check_healthy.py", HEALTHY)
    watcher = watch("--workers", "1")
    culprit = "checks/check_memory.py::check_hoards"
    watcher.wait_for(lambda s: watcher.runs(culprit, "error") >= 1, timeout=30, what="the memory error")
    assert watcher.value("fraiseql_check_worker_restarts_total", worker="1", reason="memory") == 1
    assert watcher.value("fraiseql_check_isolated", check=culprit) == 1
    assert watcher.stop() == 0
    (message,) = messages_of(checkdir, culprit)
    assert "MiB of memory, above the 300 MiB limit" in message


def test_a_file_whose_import_ends_the_worker_is_a_collection_error(checkdir: CheckDir, watch: Watch) -> None:
    checkdir.write("fraiseql-checks.yaml", FAST)
    checkdir.write("checks/check_dies.py", "import os\nos._exit(3)\n")
    checkdir.write("checks/check_hangs.py", "while True:\n    pass\n")
    checkdir.write("checks/check_healthy.py", HEALTHY)
    checkdir.write("fraiseql-checks.yaml", FAST + "import_timeout: 2s\n")
    watcher = watch("--workers", "1", ready=False)
    watcher.wait_ready(timeout=60)
    watcher.wait_for(lambda s: watcher.runs(HEALTHY_ID) >= 3, what="the healthy check to run")
    assert watcher.value("fraiseql_check_collection_errors") == 2
    assert watcher.stop() == 0
    assert "ERROR collecting checks/check_dies.py: importing it ended the worker process (exited with code 3)" in (
        watcher.stdout
    )
    assert "ERROR collecting checks/check_hangs.py: importing it did not finish within 2s" in watcher.stdout


def test_what_a_check_forks_dies_with_its_worker_and_the_port_is_free_again(checkdir: CheckDir, watch: Watch) -> None:
    pids = checkdir.path / "children.txt"
    checkdir.write("fraiseql-checks.yaml", FAST)
    checkdir.write(
        "checks/check_forks.py",
        f"""
        import os, time
        from fraiseql_checks import check

        @check(interval="1h")
        def check_forks():
            pid = os.fork()
            if pid == 0:
                time.sleep(3600)  # the child keeps every descriptor it inherited
                os._exit(0)
            with open({str(pids)!r}, "a") as out:
                out.write(f"{{pid}}\\n")
        """,
    )
    watcher = watch("--workers", "1")
    wait_until(lambda: pids.exists() and pids.read_text().strip(), what="the fork")
    child = int(pids.read_text().split()[0])
    assert psutil.pid_exists(child)
    assert watcher.stop() == 0
    wait_until(lambda: not _alive(child), what="the forked child to die with its worker")
    second = watch("--workers", "1", port=watcher.port)  # the address is free again
    assert second.stop() == 0


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_killing_the_watcher_takes_its_workers_and_their_children_down(checkdir: CheckDir, watch: Watch) -> None:
    pids = checkdir.path / "children.txt"
    checkdir.write("fraiseql-checks.yaml", FAST)
    checkdir.write(
        "checks/check_forks.py",
        f"""
        import os, subprocess
        from fraiseql_checks import check

        @check(interval="1h")
        def check_starts_a_child():
            child = subprocess.Popen(["sleep", "3600"])
            with open({str(pids)!r}, "a") as out:
                out.write(f"{{os.getpid()}} {{child.pid}}\\n")
        """,
    )
    watcher = watch("--workers", "1")
    wait_until(lambda: pids.exists() and pids.read_text().strip(), what="the child")
    worker, child = (int(pid) for pid in pids.read_text().split())

    def writers() -> list[int]:  # the SQLite store's writer process, started at the first write
        found = []
        for process in psutil.Process(watcher.process.pid).children():
            with contextlib.suppress(psutil.Error):
                if sqlite_writer.BOOTSTRAP in process.cmdline():
                    found.append(process.pid)
        return found

    wait_until(writers, what="the store's writer process")
    (writer,) = writers()
    watcher.process.kill()  # kill -9: no chance to clean up
    watcher.process.communicate()
    wait_until(
        lambda: not _alive(worker) and not _alive(child) and not _alive(writer),
        timeout=10,
        what="the worker, its child and the store's writer process to die",
    )


def test_a_flood_of_output_is_bounded_and_a_huge_message_is_cut_and_logged_once(
    checkdir: CheckDir, watch: Watch
) -> None:
    checkdir.write("fraiseql-checks.yaml", FAST)
    checkdir.write(
        "checks/check_flood.py",
        """
        import os
        from fraiseql_checks import check

        @check(interval="100ms")
        def check_prints():
            for _ in range(10_000):
                print("x" * 100)
            os.write(1, b"straight to the descriptor\\n" * 1000)

        @check(interval="100ms")
        def check_huge_message():
            assert False, "y" * 10_000_000
        """,
    )
    watcher = watch("--workers", "1")
    huge = "checks/check_flood.py::check_huge_message"
    watcher.wait_for(lambda s: watcher.runs(huge, "failed") >= 5, timeout=60, what="five huge messages")
    rss = psutil.Process(watcher.process.pid).memory_info().rss
    assert rss < 300 * 2**20, rss  # the watcher keeps none of it
    assert watcher.stop() == 0
    lengths = stored(checkdir, f"SELECT length(message) FROM results WHERE check_id = '{huge}'")
    assert lengths and all(int(n) < 5_000 for (n,) in lengths)  # type: ignore[call-overload]
    assert watcher.stdout.count(f"{huge}: the whole message (10,000,013 characters") == 1  # once in the log
    assert "lines of output not shown" in watcher.stdout
    assert len(watcher.stdout) < 20_000_000


def test_a_restart_after_kill_9_keeps_the_state_of_a_failing_check(checkdir: CheckDir, watch: Watch) -> None:
    checkdir.write("fraiseql-checks.yaml", FAST)
    checkdir.write(
        "checks/check_down.py",
        'from fraiseql_checks import check\n\n@check(interval="100ms")\ndef check_down():\n    assert False\n',
    )
    down = "checks/check_down.py::check_down"

    def stored_failures() -> int:
        with contextlib.suppress(sqlite3.Error):  # the store is not made yet
            rows = stored(checkdir, f"SELECT consecutive_failures FROM check_states WHERE check_id = '{down}'")
            return int(rows[0][0]) if rows else 0  # type: ignore[call-overload]
        return 0

    first = watch()
    # the store is written about once a second, so what it holds trails the live count: wait
    # for the stored one (not the metric, which can be 10 while the last write said 2)
    wait_until(lambda: stored_failures() >= 5, what="five failures stored")
    os.kill(first.process.pid, signal.SIGKILL)
    first.process.communicate()
    failures = stored_failures()
    assert failures >= 5
    second = watch()
    assert (second.value("fraiseql_check_state", check=down)) == 1  # failing from the start
    # the count goes on from what was stored; it does not start again from one
    assert (second.value("fraiseql_check_consecutive_failures", check=down) or 0) >= failures
    second.wait_for(lambda s: (second.value("fraiseql_check_consecutive_failures", check=down) or 0) > failures)
    assert second.stop() == 0
    changes = stored(checkdir, f"SELECT previous, state FROM state_changes WHERE check_id = '{down}'")
    assert changes == [("unknown", "failing")]  # told once, not again after the restart


LATENCY_NEIGHBOURS = """
import asyncio, time
from fraiseql_checks import check, stopwatch

@check(interval="300ms", timeout="5s")
async def check_cpu_bound():
    await asyncio.sleep(0.01)
    end = time.perf_counter() + 0.3
    while time.perf_counter() < end:   # 300 ms of CPU work without awaiting
        pass

@check(interval="100ms", timeout="5s")
async def check_latency():
    reader, writer = await asyncio.open_connection("127.0.0.1", PORT)
    with stopwatch() as took:
        writer.write(b"ping\\\\n")
        await writer.drain()
        await reader.readline()        # answered in 10 ms, often while the neighbour spins
    writer.close()
    # Any hold of the neighbour's that starts inside the interval lies wholly in it (300 ms):
    # 150 ms tells a hold left in from the scheduling noise of a busy two-core machine.
    assert took.seconds <= 0.15, f"took {took.seconds * 1000:.0f} ms ({took.wall * 1000:.0f} ms on the wall clock)"
"""


def test_a_cpu_bound_neighbour_neither_fails_a_latency_check_nor_stays_beside_it(
    checkdir: CheckDir, watch: Watch
) -> None:
    from tests.core.test_bad_checks import echo_server

    port, server = echo_server()
    checkdir.write("fraiseql-checks.yaml", FAST)
    checkdir.write("checks/check_latency.py", LATENCY_NEIGHBOURS.replace("PORT", str(port)))
    try:
        watcher = watch("--workers", "1")
        hog, latency = "checks/check_latency.py::check_cpu_bound", "checks/check_latency.py::check_latency"
        watcher.wait_for(lambda s: watcher.value("fraiseql_check_isolated", check=hog) == 1, what="the hog isolated")
        assert (watcher.value("fraiseql_check_event_loop_held_total", check=hog) or 0) >= 3
        # a run of the hog handed to worker 1 before it was isolated may still spin there: two
        # more runs of it (never two at once) put that one behind us
        isolated_at = watcher.runs(hog)
        watcher.wait_for(lambda s: watcher.runs(hog) >= isolated_at + 2, what="two runs of the hog since")
        before = watcher.runs(latency)
        watcher.wait_for(lambda s: watcher.runs(latency) >= before + 10, what="ten more latency runs")
        failed = watcher.runs(latency, "failed") + watcher.runs(latency, "error")
        assert watcher.stop() == 0
    finally:
        server.close()  # type: ignore[attr-defined]
    assert failed == 0, messages_of(checkdir, latency, "failed") + messages_of(checkdir, latency, "error")
    assert f"{hog} held the event loop of its worker for 0." in watcher.stdout
    assert f"{hog} held the event loop of worker 1 3 times; from now on it runs in a worker process of its own" in (
        watcher.stdout
    )


def test_secrets_never_reach_the_log_the_store_or_metrics(checkdir: CheckDir, watch: Watch) -> None:
    from tests.test_masking import SECRETS

    checkdir.write(
        "fraiseql-checks.yaml",
        FAST
        + f"""
grafana:
  url: http://127.0.0.1:3000
  token: {SECRETS["grafana"]}
alertmanager:
  smtp_auth_password: {SECRETS["smtp"]}
database:
  dsn: postgresql://app:dsn%40pa55%2F9c@127.0.0.1:5432/test
""",
    )
    checkdir.write(
        "checks/check_leaks.py",
        """
        import os, urllib.parse
        from fraiseql_checks import check, record

        @check(interval="200ms")
        def check_leaks(config):
            dsn = config.get("database")["dsn"]
            values = [
                config.get("grafana")["token"],
                config.get("alertmanager")["smtp_auth_password"],
                os.environ["SLACK_WEBHOOK_URL"],
                dsn,
                urllib.parse.unquote(urllib.parse.urlsplit(dsn).password),
            ]
            print("printed:", " | ".join(values))
            os.write(1, ("outside the capture: " + " | ".join(values) + "\\n").encode())
            record("leaky", 1.0)
            raise RuntimeError("raised: " + " | ".join(values) + " " + "x" * 5000)
        """,
    )
    leaks = "checks/check_leaks.py::check_leaks"
    watcher = watch("-v", "--workers", "1", env={"SLACK_WEBHOOK_URL": SECRETS["slack"]})
    watcher.wait_for(lambda s: watcher.runs(leaks, "error") >= 3, what="three runs")
    metrics = watcher.metrics_text()
    assert watcher.stop() == 0
    messages = " ".join(str(row[0]) for row in stored(checkdir, "SELECT message FROM results"))
    changes = " ".join(str(row[0]) for row in stored(checkdir, "SELECT message FROM state_changes"))
    assert "raised: *** | *** | *** | postgresql://app:***@127.0.0.1:5432/test | ***" in messages
    assert "the whole message (" in watcher.stdout  # the 5 KiB message, logged whole once: masked too
    for secret in (SECRETS["grafana"], SECRETS["smtp"], SECRETS["slack"], "dsn@pa55/9c", "dsn%40pa55%2F9c"):
        for where, text in {
            "log": watcher.stdout,
            "stderr": watcher.stderr,
            "/metrics": metrics,
            "results": messages,
            "state changes": changes,
        }.items():
            assert secret not in text, f"{secret} in {where}"


def test_a_flood_of_half_sent_requests_does_not_blind_the_watcher(checkdir: CheckDir, watch: Watch) -> None:
    import socket

    from tests.core.test_bad_checks import echo_server

    port, server = echo_server(delay=0.0)
    checkdir.write("fraiseql-checks.yaml", FAST)
    checkdir.write(
        "checks/check_socket.py",
        f"""
        import socket
        from fraiseql_checks import check

        @check(interval="100ms")
        def check_opens_a_socket():
            with socket.create_connection(("127.0.0.1", {port}), timeout=5) as conn:
                conn.sendall(b"ping\\\\n")
                assert conn.recv(10) == b"ping\\\\n"
        """,
    )
    watcher = watch()
    flood: list[socket.socket] = []
    try:
        for _ in range(600):  # more than the server's cap of 256, each with half a request
            conn = socket.create_connection(("127.0.0.1", watcher.port), timeout=5)
            conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            flood.append(conn)
        assert watcher.get("/healthz") == (200, "ok\n")
        samples = watcher.metrics()
        assert samples[("fraiseql_check_http_connections", ())] <= 256
        assert samples[("fraiseql_check_http_connections_evicted_total", ())] >= 600 - 256
        checked = "checks/check_socket.py::check_opens_a_socket"
        before = watcher.runs(checked)
        watcher.wait_for(lambda s: watcher.runs(checked) >= before + 3, what="the socket check to go on")
        assert watcher.runs(checked, "failed") == watcher.runs(checked, "error") == 0
    finally:
        for conn in flood:
            conn.close()
        server.close()  # type: ignore[attr-defined]
    assert watcher.stop() == 0


def test_results_that_do_not_pickle_and_forged_classes_do_not_stop_the_worker(checkdir: CheckDir, watch: Watch) -> None:
    checkdir.write("fraiseql-checks.yaml", FAST)
    checkdir.write(
        "checks/conftest.py",
        """
        import threading

        class Ticket:
            lock = threading.Lock()

        def fraiseql_result(result, check):
            result.extra["ticket"] = Ticket()        # no watcher could rebuild this
            result.extra["lock"] = threading.Lock()  # nor pickle this
        """,
    )
    checkdir.write("checks/check_healthy.py", HEALTHY)
    watcher = watch("--workers", "1")
    watcher.wait_for(lambda s: watcher.runs(HEALTHY_ID) >= 10, what="ten results carrying odd extras")
    assert watcher.value("fraiseql_check_worker_restarts_total", worker="1", reason="unresponsive") is None
    assert watcher.stop() == 0


def test_a_replacement_worker_that_cannot_start_is_tried_again(checkdir: CheckDir, watch: Watch) -> None:
    # workers start on the watcher's config, not the file on disk: a plugin refuses the start
    checkdir.write("fraiseql-checks.yaml", FAST + "plugins: [refuse_start]\n")
    checkdir.write(
        "refuse_start.py",
        """
        import os
        from fraiseql_checks import hookimpl
        from fraiseql_checks.config import UsageError

        @hookimpl
        def fraiseql_configure(config):
            if os.path.exists("refuse-start"):
                raise UsageError("refuse-start is there")
        """,
    )
    checkdir.write(
        "checks/check_exits.py",
        'import os\nfrom fraiseql_checks import check\n\n@check(interval="200ms")\ndef check_exit():\n    os._exit(0)\n',
    )
    checkdir.write("checks/check_healthy.py", HEALTHY)
    watcher = watch("--workers", "1")
    culprit = "checks/check_exits.py::check_exit"
    watcher.wait_for(lambda s: watcher.value("fraiseql_check_isolated", check=culprit) == 1, what="isolation")
    checkdir.write("refuse-start", "")  # a new worker now cannot start

    def restarts() -> float:
        return sum(
            watcher.value("fraiseql_check_worker_restarts_total", worker="isolated-1", reason=reason) or 0
            for reason in ("exited", "import")
        )

    seen = restarts()
    wait_until(lambda: restarts() >= seen + 2, timeout=30, what="the worker to be tried again, and again")
    errors = watcher.runs(culprit, "error")
    (checkdir.path / "refuse-start").unlink()  # fixed: the next attempt starts
    watcher.wait_for(lambda s: watcher.runs(culprit, "error") > errors, timeout=60, what="the check to run again")
    assert watcher.stop() == 0
    assert "worker isolated-1 cannot start" in watcher.stdout


def test_a_slow_collection_does_not_count_as_a_held_loop(checkdir: CheckDir, watch: Watch) -> None:
    checkdir.write("fraiseql-checks.yaml", FAST)
    checkdir.write("checks/check_slow_import.py", "import time\ntime.sleep(11)\n\ndef check_loaded():\n    pass\n")
    watcher = watch("--workers", "1", ready=False)
    watcher.wait_ready(timeout=60)
    loaded = "checks/check_slow_import.py::check_loaded"
    watcher.wait_for(lambda s: watcher.runs(loaded) >= 1, what="a first run")
    before = watcher.metrics()
    time.sleep(3)  # the moment a watcher that took the import for a held loop would replace the worker
    assert watcher.value("fraiseql_check_worker_restarts_total", worker="1", reason="unresponsive") is None
    assert (
        before[("fraiseql_check_worker_up", (("worker", "1"),))]
        == watcher.value("fraiseql_check_worker_up", worker="1")
        == 1
    )
    assert watcher.stop() == 0


def test_a_file_fixed_after_it_ended_a_worker_is_imported_again_at_a_reload(checkdir: CheckDir, watch: Watch) -> None:
    checkdir.write("fraiseql-checks.yaml", FAST)
    checkdir.write("checks/check_bad.py", "import os\nos._exit(3)\n")
    checkdir.write("checks/check_healthy.py", HEALTHY)
    watcher = watch("--workers", "1")
    watcher.wait_for(lambda s: s.get(("fraiseql_check_collection_errors", ())) == 1, what="the broken file")
    checkdir.write(
        "checks/check_bad.py",
        'from fraiseql_checks import check\n\n@check(interval="100ms")\ndef check_fixed():\n    pass\n',
    )
    watcher.send(signal.SIGHUP)
    fixed = "checks/check_bad.py::check_fixed"
    watcher.wait_for(lambda s: watcher.runs(fixed) >= 2, what="the fixed file's check to run")
    assert watcher.value("fraiseql_check_collection_errors") == 0
    assert watcher.stop() == 0


def test_a_check_ending_its_worker_during_a_reload_does_not_get_the_file_being_imported_skipped(
    checkdir: CheckDir, watch: Watch
) -> None:
    flag, marker = checkdir.path / "reloading", checkdir.path / "importing"
    checkdir.write("fraiseql-checks.yaml", FAST)
    checkdir.write(
        "checks/check_slow.py",
        f"""
        import os, time
        from fraiseql_checks import check

        if os.path.exists({str(flag)!r}):  # imported again by the reload: slowly
            open({str(marker)!r}, "w").close()
            time.sleep(2)

        @check(interval="100ms")
        def check_slow_file():
            pass
        """,
    )
    checkdir.write(
        "checks/check_exits.py",
        f"""
        import os, time
        from fraiseql_checks import check

        @check(interval="200ms", timeout="20s")
        def check_exit_while_importing():
            if os.path.exists({str(flag)!r}):
                while not os.path.exists({str(marker)!r}):
                    time.sleep(0.02)
                os._exit(0)
        """,
    )
    watcher = watch("--workers", "1")
    slow, exits = "checks/check_slow.py::check_slow_file", "checks/check_exits.py::check_exit_while_importing"
    watcher.wait_for(lambda s: watcher.runs(slow) >= 2 and watcher.runs(exits) >= 2, what="both running")
    flag.touch()
    time.sleep(0.5)  # check_exit_while_importing is now waiting for the reload's import
    watcher.send(signal.SIGHUP)
    watcher.wait_for(lambda s: watcher.value("fraiseql_check_isolated", check=exits) == 1, what="the culprit isolated")
    before = watcher.runs(slow)
    watcher.wait_for(lambda s: watcher.runs(slow) >= before + 3, what="the slow file's check to go on")
    assert watcher.stop() == 0
    assert "ERROR collecting checks/check_slow.py" not in watcher.stdout
    assert messages_of(checkdir, slow) == []


def test_isolated_checks_each_get_a_worker_and_waiting_runs_take_no_slot(checkdir: CheckDir, watch: Watch) -> None:
    checkdir.write("fraiseql-checks.yaml", FAST + "concurrency: 2\n")
    checkdir.write(
        "checks/check_bad.py",
        """
        import asyncio, os, time
        from fraiseql_checks import check

        @check(interval="200ms")
        def check_crashes():
            os._exit(0)

        @check(interval="200ms")
        async def check_hogs():
            end = time.perf_counter() + 0.3
            while time.perf_counter() < end:
                pass
        """,
    )
    checkdir.write("checks/check_healthy.py", HEALTHY.replace('interval="100ms"', 'interval="200ms"'))
    watcher = watch("--workers", "1")
    crashes, hogs = "checks/check_bad.py::check_crashes", "checks/check_bad.py::check_hogs"
    watcher.wait_for(
        lambda s: (
            watcher.value("fraiseql_check_isolated", check=crashes) == 1
            and watcher.value("fraiseql_check_isolated", check=hogs) == 1
        ),
        what="both isolated",
    )
    wait_until(
        lambda: (watcher.value("fraiseql_check_worker_restarts_total", worker="isolated-1", reason="exited") or 0) >= 3,
        what="backoff",
    )
    before = watcher.runs(HEALTHY_ID)
    time.sleep(3)  # the crashing worker now waits seconds between restarts, its runs waiting for it
    assert watcher.runs(HEALTHY_ID) >= before + 8  # every 200 ms: its slot was never taken by those runs
    assert watcher.stop() == 0
    hog_errors = messages_of(checkdir, hogs)
    assert not any("os._exit" in message for message in hog_errors), hog_errors  # not the crasher's worker


def test_a_stop_while_a_worker_still_imports_is_prompt(checkdir: CheckDir, watch: Watch) -> None:
    checkdir.write("fraiseql-checks.yaml", FAST)
    checkdir.write("checks/check_a.py", HEALTHY)
    checkdir.write("checks/check_b.py", "import time\ntime.sleep(3)\n\ndef check_b():\n    pass\n")
    watcher = watch("--workers", "2", ready=False)
    watcher.wait_ready(timeout=60)  # worker 1 (or 2) collected; the other may still be importing
    assert watcher.stop() == 0
    assert "did not stop within" not in watcher.stdout


def test_secrets_in_collection_errors_ids_and_worker_output_are_masked(checkdir: CheckDir, watch: Watch) -> None:
    secret = "hunter2secret"
    dsn = f"postgresql://app:{secret}@db.invalid:5432/app"
    checkdir.write("fraiseql-checks.yaml", FAST + f"database:\n  dsn: {dsn}\n")
    checkdir.write("checks/check_broken.py", f"raise RuntimeError('cannot reach {dsn}')\n")
    checkdir.write(
        "checks/check_params.py",
        f"""
        import os, pytest
        from fraiseql_checks import check

        @pytest.mark.parametrize("url", [{dsn!r}])
        @check(interval="200ms")
        def check_with_a_dsn(url):
            os.write(1, (" long " * 200 + url + "\\n").encode())
        """,
    )
    watcher = watch("--workers", "1")
    watcher.wait_for(lambda s: any(k[0] == "fraiseql_check_up" for k in s), what="a run")
    metrics = watcher.metrics_text()
    assert watcher.stop() == 0
    rows = stored(checkdir, "SELECT check_id, message FROM results")
    for where, text in {"log": watcher.stdout, "/metrics": metrics, "store": repr(rows)}.items():
        assert secret not in text, where
        assert "app:hunter" not in text, where  # not even its start (a line cut before it was masked)


def test_an_answer_that_came_while_a_neighbour_held_a_workers_loop_does_not_time_out(
    checkdir: CheckDir, watch: Callable[..., WatchProcess]
) -> None:
    """Watch mode's workers give a neighbour's hold back as the one-shot runner does
    (tests/targets/test_cache.py): the BLPOP's answer comes after 0.3 s, while the
    neighbour holds the worker's loop for 1.5 s, past the cache's 1 s limit."""
    write_blpop_neighbours(checkdir, 0.3, "interval: 1h\nstart_jitter: 0s\n", then="assert value is None")
    waits, holds = "checks/check_neighbours.py::check_waits", "checks/check_neighbours.py::check_holds_the_loop"
    watcher = watch("--workers", "1")
    watcher.wait_for(lambda s: watcher.runs(waits, "passed") + watcher.runs(waits, "failed") >= 1, what="a run")
    watcher.wait_for(lambda s: watcher.runs(holds) >= 1, what="the neighbour's run")
    outcomes = (watcher.runs(waits, "passed"), watcher.runs(waits, "failed"))
    watcher.stop()
    assert "check_holds_the_loop held the event loop of its worker for 1." in watcher.stdout
    assert outcomes == (1, 0), watcher.stdout


HEAP_CHECK = """import gc

from fraiseql_checks import check
from fraiseql_checks.watch import heap

@check(interval="100ms")
def check_heap_{version}():
    assert gc.get_freeze_count() > 0, "nothing frozen"
    assert gc.get_threshold() == heap.GC_THRESHOLDS
"""


def test_a_worker_keeps_the_garbage_collector_off_what_it_collected_and_again_after_a_reload(
    checkdir: CheckDir, watch: Watch
) -> None:
    checkdir.write("fraiseql-checks.yaml", FAST)
    checkdir.write("checks/check_heap.py", HEAP_CHECK.format(version=1))
    watcher = watch("--workers", "1")
    watcher.wait_for(lambda s: watcher.runs("checks/check_heap.py::check_heap_1") >= 2, what="the first version")
    checkdir.write("checks/check_heap.py", HEAP_CHECK.format(version=2))
    watcher.send(signal.SIGHUP)
    watcher.wait_for(lambda s: watcher.runs("checks/check_heap.py::check_heap_2") >= 2, what="the reloaded version")
    for version in (1, 2):
        assert not messages_of(checkdir, f"checks/check_heap.py::check_heap_{version}", "failed")
    assert watcher.stop() == 0
