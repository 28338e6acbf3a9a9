"""Running: concurrency, threads, timeouts, blocked loops, -x, Ctrl-C, exit codes."""

from __future__ import annotations

import signal
import textwrap
import time

import pytest

from tests.support.checkdir import CheckDir
from tests.support.services import wait_until


def test_async_checks_run_concurrently(checkdir: CheckDir) -> None:
    """Ten checks that each wait for all ten to be running at once can only pass concurrently."""
    checkdir.write(
        "checks/check_barrier.py",
        """
        import asyncio
        import pytest

        arrived = 0
        all_here = asyncio.Event()

        @pytest.mark.parametrize("n", range(10))
        async def check_waits_for_the_others(n):
            global arrived
            arrived += 1
            if arrived == 10:
                all_here.set()
            await asyncio.wait_for(all_here.wait(), timeout=5)
        """,
    )
    result, outcomes = checkdir.outcomes()
    assert result.ret == 0, result.stdout
    assert list(outcomes.values()) == ["passed"] * 10
    # With a cap of five, the first five never see ten arrivals and time out; the
    # next five bring the count to ten and pass: never more than five at once.
    result, outcomes = checkdir.outcomes("--concurrency", "5", "--timeout", "1")
    assert result.ret == 1
    assert list(outcomes.values()) == ["error"] * 5 + ["passed"] * 5


def test_sync_checks_run_on_worker_threads_concurrently(checkdir: CheckDir) -> None:
    checkdir.write(
        "checks/check_threads.py",
        """
        import threading
        import pytest

        barrier = threading.Barrier(4, timeout=5)

        @pytest.mark.parametrize("n", range(4))
        def check_sync(n):
            assert threading.current_thread() is not threading.main_thread()
            barrier.wait()
        """,
    )
    result, _outcomes = checkdir.outcomes()
    assert result.ret == 0, result.stdout


def test_timeouts_async_sync_and_loop_blocking(checkdir: CheckDir) -> None:
    checkdir.write(
        "checks/check_slow.py",
        """
        import asyncio, time
        from fraiseql_checks import check

        @check(timeout="0.5s")
        async def check_async_hangs():
            await asyncio.sleep(3600)

        @check(timeout="0.5s")
        def check_sync_blocks():
            time.sleep(3600)

        @check(timeout="0.5s")
        async def check_blocks_the_loop():
            time.sleep(3600)

        async def check_quick():
            await asyncio.sleep(0.01)

        def check_quick_sync():
            pass
        """,
    )
    started = time.monotonic()
    result, report = checkdir.run_json(timeout=60)
    assert time.monotonic() - started < 60  # the run did not wait for the hour-long calls
    by_name = {r["name"]: r for r in report["results"]}
    for name in ("check_async_hangs", "check_sync_blocks"):
        assert by_name[name]["outcome"] == "error"
        assert by_name[name]["timed_out"] is True
        assert by_name[name]["message"] == "timed out after 0.5s"
    blocker = by_name["check_blocks_the_loop"]
    assert blocker["outcome"] == "error" and blocker["timed_out"] is True
    assert "blocked the event loop" in blocker["message"]
    # The checks that did not block the loop get the stall back and pass.
    assert by_name["check_quick"]["outcome"] == "passed"
    assert by_name["check_quick_sync"]["outcome"] == "passed"
    assert result.ret == 1


def test_timeout_from_command_line_and_config(checkdir: CheckDir) -> None:
    checkdir.write(
        "checks/check_t.py",
        """
        import asyncio
        from fraiseql_checks import check

        async def check_default():
            await asyncio.sleep(0.6)

        @check(timeout="5s")
        async def check_own_timeout_wins():
            await asyncio.sleep(0.6)
        """,
    )
    _, outcomes = checkdir.outcomes("--timeout", "0.3")
    assert outcomes["checks/check_t.py::check_default"] == "error"
    assert outcomes["checks/check_t.py::check_own_timeout_wins"] == "passed"
    checkdir.write("fraiseql-checks.yaml", "timeout: 300ms\n")
    _, outcomes = checkdir.outcomes()
    assert outcomes["checks/check_t.py::check_default"] == "error"
    _, outcomes = checkdir.outcomes("--timeout", "2s")
    assert outcomes["checks/check_t.py::check_default"] == "passed"


def test_a_check_raising_timeout_error_itself_is_not_a_timeout(checkdir: CheckDir) -> None:
    checkdir.write("checks/check_own.py", "def check_own():\n    raise TimeoutError('the API said 504')")
    _, report = checkdir.run_json()
    (result,) = report["results"]
    assert result["outcome"] == "error" and result["timed_out"] is False
    assert result["message"] == "TimeoutError: the API said 504"


def test_exitfirst_stops_scheduling(checkdir: CheckDir) -> None:
    checkdir.write(
        "checks/check_x.py",
        """
        import pytest

        @pytest.mark.parametrize("n", range(50))
        def check_n(n):
            assert n != 3
        """,
    )
    result, report = checkdir.run_json("-x", "--concurrency", "1")
    assert result.ret == 1
    assert report["summary"] == {**report["summary"], "failed": 1, "passed": 3, "total": 4}
    result.fnmatch_lines(["!!!*! stopping after 1 failures !*!!!", "*= 1 failed, 3 passed in *"])


SLOW_CHECKS = {
    "async def": """
        @pytest.mark.parametrize("n", range(3))
        async def check_slow(n):
            await asyncio.sleep(3600)
    """,
    # a def check without fixtures runs without a task of its own (Runner.start_sync)
    "def": """
        @pytest.mark.parametrize("n", range(3))
        def check_slow(n):
            threading.Event().wait(3600)
    """,
}


@pytest.mark.parametrize("kind", SLOW_CHECKS)
def test_ctrl_c_prints_what_finished_and_exits_2(checkdir: CheckDir, kind: str) -> None:
    checkdir.write(
        "checks/check_slow.py",
        """
        import asyncio, threading, pytest

        def check_fast():
            pass
        """
        + SLOW_CHECKS[kind],
    )
    process = checkdir.popen("-v", "--timeout", "3600")
    assert process.stdout is not None
    for line in process.stdout:
        if "check_fast PASSED" in line:
            break
    time.sleep(0.3)
    process.send_signal(signal.SIGINT)
    out, _ = process.communicate(timeout=30)
    assert process.returncode == 2
    assert "KeyboardInterrupt" in out
    # the three runs cut short are reported, not dropped
    assert "1 passed, 3 errors in" in out
    summary = [line for line in out.splitlines() if line.startswith("ERROR checks/check_slow.py::check_slow[")]
    assert len(summary) == 3 and all(line.endswith(" - interrupted (Ctrl-C) while running") for line in summary)


def test_the_first_ctrl_c_while_a_check_holds_the_loop_interrupts_the_others(checkdir: CheckDir) -> None:
    """A signal handler runs in whatever context the main thread is in: while an async
    check holds the loop, that check's run. The first Ctrl-C's cancel of the run's main
    task must not be taken for that check's code (which may not cancel it): the runs
    under way are reported interrupted, not left to run to their timeouts."""
    checkdir.write(
        "checks/check_busy.py",
        """
        import asyncio, pathlib, time

        async def check_a_holds_the_loop():
            pathlib.Path("holding").touch()
            end = time.monotonic() + 2
            while time.monotonic() < end:
                pass

        async def check_b_waits():
            await asyncio.sleep(3600)

        async def check_c_waits():
            await asyncio.sleep(3600)
        """,
    )
    process = checkdir.popen("-v", "--timeout", "3600")
    wait_until(lambda: (checkdir.path / "holding").exists(), what="the check holding the loop")
    process.send_signal(signal.SIGINT)
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 2, out
    summary = sorted(line for line in out.splitlines() if line.startswith("ERROR checks/check_busy.py::"))
    assert summary == [
        "ERROR checks/check_busy.py::check_b_waits - interrupted (Ctrl-C) while running",
        "ERROR checks/check_busy.py::check_c_waits - interrupted (Ctrl-C) while running",
    ]


def test_a_def_check_ended_by_its_timeout_is_reported_outside_other_runs(checkdir: CheckDir) -> None:
    """The watchdog ends a hung ``def`` check (no task of its own) from its tick: what a
    report hook prints then goes to the terminal, not into the output captured for
    another check that was running when the tick was armed (the first check's task arms
    it; the hung check starts in the quick one's slot)."""
    checkdir.write(
        "checks/conftest.py",
        """
        def fraiseql_report_result(result):
            print("HOOK", result.id.rsplit("::", 1)[1], result.outcome.value, flush=True)
        """,
    )
    checkdir.write(
        "checks/check_t.py",
        """
        import asyncio, time
        from fraiseql_checks import check

        @check(timeout=5)
        async def check_a_fails_later():
            await asyncio.sleep(1.5)
            assert False, "fails"

        async def check_a_quick():
            pass

        def check_b_hangs():
            time.sleep(3)
        """,
    )
    result = checkdir.run("--timeout", "1s", "--concurrency", "2")
    assert result.ret == 1
    captured = result.stdout.split("Captured stdout", 1)[1] if "Captured stdout" in result.stdout else ""
    assert "HOOK check_b_hangs error" not in captured
    assert result.stdout.count("HOOK check_b_hangs error") == 1


def test_a_second_ctrl_c_in_a_report_hook_ends_the_run(checkdir: CheckDir) -> None:
    """The second Ctrl-C raises ``KeyboardInterrupt`` wherever the main thread is; in a
    report hook (called from the end of a ``def`` check's run) it ends the run at once:
    not caught on the way, nor waited out behind a session fixture's slow teardown."""
    checkdir.write(
        "checks/conftest.py",
        """
        import asyncio, os, signal, sys
        from fraiseql_checks import fixture

        reported = 0

        def fraiseql_report_result(result):
            global reported
            reported += 1
            if reported == 1:
                os.kill(os.getpid(), signal.SIGINT)
                os.kill(os.getpid(), signal.SIGINT)
                print("HOOK: survived", file=sys.stderr, flush=True)

        @fixture(scope="session")
        async def slow_teardown():
            yield 1
            await asyncio.sleep(5)
            print("TEARDOWN: end", file=sys.stderr, flush=True)
        """,
    )
    checkdir.write(
        "checks/check_x.py",
        """
        import threading

        def check_fast():
            pass

        def check_slow():
            threading.Event().wait(5)

        async def check_uses(slow_teardown):
            pass
        """,
    )
    result = checkdir.run()
    assert result.ret == 2
    assert "HOOK: survived" not in result.stderr
    assert "TEARDOWN: end" not in result.stderr


def test_a_second_ctrl_c_while_runs_are_reported_interrupted_ends_the_run(checkdir: CheckDir) -> None:
    """The first Ctrl-C comes while a quick check is reported, the second while a hung
    ``def`` check (no task of its own) is reported interrupted: the run ends at once,
    without waiting for the hung ``async def`` check's task."""
    checkdir.write(
        "checks/conftest.py",
        """
        import os, signal, sys

        def fraiseql_report_result(result):
            if result.id.endswith("check_fast"):
                os.kill(os.getpid(), signal.SIGINT)
            elif result.id.endswith("check_hangs_in_a_thread"):
                os.kill(os.getpid(), signal.SIGINT)
                print("HOOK: survived", file=sys.stderr, flush=True)
        """,
    )
    checkdir.write(
        "checks/check_ki.py",
        """
        import asyncio, threading, time

        async def check_hangs_on_the_loop():
            await asyncio.sleep(3600)

        def check_hangs_in_a_thread():
            threading.Event().wait(3600)

        def check_fast():
            time.sleep(0.3)
        """,
    )
    result = checkdir.run("--timeout", "3600s", timeout=60)
    assert result.ret == 2
    assert "HOOK: survived" not in result.stderr


def test_what_a_conftest_sets_in_the_context_every_check_sees(checkdir: CheckDir) -> None:
    """A context variable (or the decimal context) a conftest sets is seen by every check,
    one at a time, whichever started it: the runs after the first are started from the
    ends of runs without a task, which the lane's thread delivers."""
    checkdir.write("checks/ctxvars.py", "import contextvars\n\nV = contextvars.ContextVar('v')\n")
    checkdir.write(
        "checks/conftest.py",
        """
        import decimal
        from ctxvars import V

        V.set("main")
        decimal.getcontext().prec = 6
        """,
    )
    checkdir.write(
        "checks/check_ctx.py",
        """
        import decimal, pytest
        from ctxvars import V

        @pytest.mark.parametrize("n", range(4))
        def check_sync(n):
            assert V.get("<unset>") == "main"
            assert decimal.getcontext().prec == 6

        @pytest.mark.parametrize("n", range(2))
        async def check_async(n):
            assert V.get("<unset>") == "main"
        """,
    )
    result = checkdir.run("--concurrency", "1")
    assert result.ret == 0, result.stdout
    result.fnmatch_lines(["*= 6 passed in *"])


def test_a_check_that_cancels_its_own_task_is_an_error_and_the_others_run(checkdir: CheckDir) -> None:
    """An ``async def`` check that cancels its own task is an error result of its own:
    the run neither loses it nor ends as an internal error, and every other check runs."""
    checkdir.write(
        "checks/check_sc.py",
        """
        import asyncio

        async def check_cancels_itself():
            asyncio.current_task().cancel()
            await asyncio.sleep(0)

        async def check_other_async():
            await asyncio.sleep(0.01)

        def check_other():
            pass
        """,
    )
    result = checkdir.run("--concurrency", "1")
    assert result.ret == 1, result.stdout + result.stderr
    result.fnmatch_lines(
        [
            "ERROR checks/check_sc.py::check_cancels_itself - its task was cancelled by the check's own code*",
            "*= 2 passed, 1 error in *",
        ]
    )
    assert "INTERNALERROR" not in result.stderr


#: Shutdown code copied into a check or a fixture: cancel every task but the caller's own.
#: Written at the head of the check files that use it (``with_cancel_helper``).
CANCEL_EVERY_OTHER_TASK = """\
import asyncio


def cancel_every_other_task():
    me = asyncio.current_task()
    for task in asyncio.all_tasks():
        if task is not me:
            task.cancel()
"""


def with_cancel_helper(text: str) -> str:
    """A check file's text with ``cancel_every_other_task()`` defined at its head."""
    return CANCEL_EVERY_OTHER_TASK + textwrap.dedent(text)


def test_a_check_that_cancels_every_task_it_sees_cuts_neither_the_run_nor_another_check(checkdir: CheckDir) -> None:
    """``for task in asyncio.all_tasks(): task.cancel()`` in a check cancelled the run's
    main task (an internal error, exit 3) and the task of the check running beside it (an
    error of that innocent check). Neither is its to cancel: refused, and every check
    passes; so does a cancel a check left for its task, which fires after its run, while
    the task runs the next check (``--concurrency 1``)."""
    checkdir.write(
        "checks/check_ca.py",
        with_cancel_helper(
            """
        import asyncio

        async def check_1_sleeps():
            await asyncio.sleep(0.2)

        async def check_2_cancels_every_task():
            await asyncio.sleep(0.05)
            cancel_every_other_task()
            """
        ),
    )
    result = checkdir.run()
    assert result.ret == 0, result.stdout + result.stderr
    result.fnmatch_lines(["*= 2 passed in *"])
    checkdir.write(
        "checks/check_ca.py",
        """
        import asyncio

        async def check_1_leaves_a_cancel_for_later():
            asyncio.get_running_loop().call_later(0.05, asyncio.current_task().cancel)

        async def check_2_runs_on_the_same_task():
            await asyncio.sleep(0.2)
        """,
    )
    result = checkdir.run("--concurrency", "1")
    assert result.ret == 0, result.stdout + result.stderr
    result.fnmatch_lines(["*= 2 passed in *"])


def test_what_the_guard_cannot_see_neither_blinds_the_run_nor_is_refused(checkdir: CheckDir) -> None:
    """A loop stopped from a thread that has no run (an executor's: ``run_in_executor``
    copies no context) is run on, not an internal error; a task made outside any run by
    code that is not the runner's (``run_coroutine_threadsafe`` from a thread) can be
    cancelled by the check that asked for it; the task awaiting what a ``def`` check
    returned is that run's own from its start, so another check cannot cancel it."""
    checkdir.write(
        "checks/check_g.py",
        """
        import asyncio

        async def check_a_stops_the_loop_from_an_executor():
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, loop.call_soon_threadsafe, loop.stop)
            await asyncio.sleep(0.05)

        async def check_b_cancels_what_a_thread_scheduled():
            loop = asyncio.get_running_loop()
            future = await loop.run_in_executor(
                None, lambda: asyncio.run_coroutine_threadsafe(asyncio.sleep(3600), loop)
            )
            await asyncio.sleep(0.05)
            (task,) = [t for t in asyncio.all_tasks() if "sleep" in repr(t.get_coro())]
            assert task.cancel()
        """,
    )
    result = checkdir.run()
    assert result.ret == 0, result.stdout + result.stderr
    result.fnmatch_lines(["*= 2 passed in *"])
    checkdir.write(
        "checks/check_g.py",
        with_cancel_helper(
            """
        import asyncio

        async def waits():
            await asyncio.sleep(0.3)

        def check_c_returns_an_awaitable():
            return waits()

        async def check_d_cancels_every_task():
            await asyncio.sleep(0.1)
            cancel_every_other_task()
            """
        ),
    )
    result = checkdir.run()
    assert result.ret == 0, result.stdout + result.stderr
    result.fnmatch_lines(["*= 2 passed in *"])


def test_run_to_end_runs_on_after_a_stop_and_raises_any_other_error() -> None:
    """A loop stopped before the run's future is done is run again; any other error of
    ``run_until_complete`` (another loop running in this thread: a run started in-process
    from async code) is raised, not retried for ever."""
    import asyncio

    from fraiseql_checks.core._tasks import run_to_end

    loop = asyncio.new_event_loop()
    try:

        async def stopped_on_the_way() -> int:
            loop.call_soon(loop.stop)
            await asyncio.sleep(0.01)
            return 7

        assert run_to_end(loop, loop.create_task(stopped_on_the_way())) == 7

        async def inside_a_running_loop() -> None:
            other = asyncio.new_event_loop()
            try:
                with pytest.raises(RuntimeError, match="another loop is running"):
                    run_to_end(other, other.create_future())
            finally:
                other.close()

        loop.run_until_complete(inside_a_running_loop())
    finally:
        loop.close()


def test_wide_fixtures_set_up_and_torn_down_beside_a_check_that_cancels_every_task(checkdir: CheckDir) -> None:
    """A session fixture's set-up runs on a task of its own, made in the run of the check
    that needed it first: another check's ``for t in asyncio.all_tasks(): t.cancel()``
    cut it (an error of the innocent check). A module fixture's teardown runs outside any
    run: the same loop in it cancelled the run's own tasks (an internal error, exit 3, the
    results lost). Now neither is within such code's reach; the teardown may still cancel
    its own task."""
    checkdir.write(
        "checks/conftest.py",
        """
        import asyncio
        from fraiseql_checks import fixture

        @fixture(scope="session")
        async def slow_client():
            await asyncio.sleep(0.5)
            yield "client"
        """,
    )
    checkdir.write(
        "checks/check_a.py",
        with_cancel_helper(
            """
        import asyncio

        async def check_a_uses_the_client(slow_client):
            assert slow_client == "client"

        async def check_b_cancels_every_task():
            await asyncio.sleep(0.1)
            cancel_every_other_task()
            """
        ),
    )
    checkdir.write(
        "checks/check_m.py",
        with_cancel_helper(
            """
        import asyncio
        from fraiseql_checks import fixture

        @fixture(scope="module")
        async def cleans_up_everything():
            yield 1
            cancel_every_other_task()

        async def check_m_uses_it(cleans_up_everything):
            pass
            """
        ),
    )
    checkdir.write(
        "checks/check_z.py",
        """
        import asyncio

        async def check_z_innocent():
            await asyncio.sleep(1)
        """,
    )
    result = checkdir.run()
    assert result.ret == 0, result.stdout + result.stderr
    result.fnmatch_lines(["*= 4 passed in *"])


def test_a_check_that_stops_the_loop_is_an_error_of_its_own(checkdir: CheckDir) -> None:
    """``loop.stop()`` in a check stopped the run's loop: an internal error (exit code 3),
    every result lost. Now it raises in the check: an error of that check, the others run."""
    checkdir.write(
        "checks/check_st.py",
        """
        import asyncio

        async def check_1_sleeps():
            await asyncio.sleep(0.1)

        async def check_2_stops_the_loop():
            asyncio.get_running_loop().stop()

        def check_3_after_it():
            pass
        """,
    )
    result = checkdir.run()
    assert result.ret == 1, result.stdout + result.stderr
    result.fnmatch_lines(
        [
            "ERROR checks/check_st.py::check_2_stops_the_loop - RuntimeError: loop.stop() called by a check*",
            "*= 2 passed, 1 error in *",
        ]
    )
    assert "INTERNALERROR" not in result.stderr


def test_a_run_task_cancelled_from_a_thread_of_its_own_says_so(checkdir: CheckDir) -> None:
    """A thread the check started has no run of its own (a new thread's context is
    empty): its cancel is not refused, and the error says where it came from."""
    checkdir.write(
        "checks/check_th.py",
        """
        import asyncio
        import threading

        async def check_cancelled_from_a_thread():
            loop, task = asyncio.get_running_loop(), asyncio.current_task()
            threading.Thread(target=loop.call_soon_threadsafe, args=(task.cancel,)).start()
            await asyncio.sleep(5)
        """,
    )
    result = checkdir.run()
    assert result.ret == 1, result.stdout + result.stderr
    result.fnmatch_lines(
        [
            "ERROR checks/check_th.py::check_cancelled_from_a_thread - its task was cancelled, not by the runner:"
            " by code outside any check's run*",
        ]
    )


def test_a_check_may_still_cancel_tasks_made_in_a_run_and_time_itself_out(checkdir: CheckDir) -> None:
    """What the guard leaves alone: a task the check made, a task a session fixture made
    in another check's run (a shared client's, which a library may cancel from any check),
    and ``asyncio.timeout`` inside the check, which cancels the check's own task."""
    checkdir.write(
        "checks/check_own.py",
        """
        import asyncio
        from fraiseql_checks import fixture

        @fixture(scope="session")
        async def background():
            return asyncio.get_running_loop().create_task(asyncio.sleep(3600))

        async def check_1_sets_it_up(background):
            pass

        async def check_2_cancels_the_fixtures_task(background):
            assert background.cancel()
            await asyncio.wait([background])
            assert background.cancelled()

        async def check_3_cancels_its_own_task():
            task = asyncio.get_running_loop().create_task(asyncio.sleep(3600))
            await asyncio.sleep(0)
            assert task.cancel()
            await asyncio.wait([task])
            assert task.cancelled()

        async def check_4_times_itself_out():
            try:
                async with asyncio.timeout(0.01):
                    await asyncio.sleep(3600)
            except TimeoutError:
                return
            raise AssertionError("not timed out")
        """,
    )
    result = checkdir.run("--concurrency", "1")
    assert result.ret == 0, result.stdout + result.stderr
    result.fnmatch_lines(["*= 4 passed in *"])


def test_a_cancel_the_check_left_behind_cuts_neither_its_teardown_nor_the_next_check(checkdir: CheckDir) -> None:
    """A check that cancels its own task and catches the ``CancelledError``, or returns
    before it is delivered, ends as it returned; the request is withdrawn, so the next
    check run by the same task (``--concurrency 1``) and the fixture's teardown are not
    cut short by it."""
    checkdir.write(
        "checks/check_sc.py",
        """
        import asyncio
        from fraiseql_checks import fixture

        torn_down = []

        @fixture
        async def resource():
            yield "r"
            await asyncio.sleep(0)
            torn_down.append("r")

        async def check_1_cancels_and_catches(resource):
            asyncio.current_task().cancel()
            try:
                await asyncio.sleep(0)
            except asyncio.CancelledError:
                pass

        async def check_2_cancels_and_returns(resource):
            asyncio.current_task().cancel()

        async def check_3_after_them():
            await asyncio.sleep(0.01)
            assert torn_down == ["r", "r"]
        """,
    )
    result = checkdir.run("--concurrency", "1")
    assert result.ret == 0, result.stdout + result.stderr
    result.fnmatch_lines(["*= 3 passed in *"])


def test_a_fixture_teardown_that_cancels_its_own_task_is_an_error_of_its_check(checkdir: CheckDir) -> None:
    """The teardown of a check's fixture, and of a module fixture, that cancels its own
    task: an error of that check and of that module, with the fixture named; the other
    checks run and the run ends with exit code 1, not as an internal error. A teardown
    that ends before its cancellation arrives ends as it returned."""
    checkdir.write(
        "checks/check_td.py",
        """
        import asyncio
        from fraiseql_checks import fixture

        @fixture
        async def per_check():
            yield 1
            asyncio.current_task().cancel()
            await asyncio.sleep(0)

        @fixture(scope="module")
        async def per_module():
            yield 1
            asyncio.current_task().cancel()
            await asyncio.sleep(0)

        @fixture
        async def cancels_and_returns():
            yield 1
            asyncio.current_task().cancel()  # not delivered before it ends: taken back

        async def check_a(per_check, per_module, cancels_and_returns):
            pass

        async def check_b():
            await asyncio.sleep(0.01)
        """,
    )
    result = checkdir.run("--concurrency", "1")
    assert result.ret == 1, result.stdout + result.stderr
    assert "INTERNALERROR" not in result.stderr
    result.fnmatch_lines(
        [
            "ERROR checks/check_td.py::check_a - teardown of fixture 'per_check' failed: CancelledError",
            "ERROR checks/check_td.py::per_module - teardown of fixture 'per_module' failed: CancelledError",
            "*= 1 passed, 2 errors in *",
        ]
    )


def test_a_check_that_cancels_its_own_task_after_the_first_ctrl_c_is_reported_and_torn_down(
    checkdir: CheckDir,
) -> None:
    """The first Ctrl-C comes while a check runs, and the check then cancels its own task
    and returns: it is reported as it ended and its fixture is torn down, then the run
    stops (exit code 2), as for any run under way at the first Ctrl-C."""
    checkdir.write(
        "checks/check_ki.py",
        """
        import asyncio, os, signal, sys
        from fraiseql_checks import fixture

        @fixture
        async def res():
            yield 1
            print("TEARDOWN RAN", file=sys.stderr, flush=True)

        async def check_ctrl_c_then_self_cancel(res):
            os.kill(os.getpid(), signal.SIGINT)
            asyncio.current_task().cancel()

        async def check_other():
            await asyncio.sleep(0.5)
        """,
    )
    result = checkdir.run("-v", "-s")
    assert result.ret == 2, result.stdout + result.stderr
    assert "TEARDOWN RAN" in result.stdout + result.stderr
    result.fnmatch_lines(["*check_ctrl_c_then_self_cancel PASSED*"])


def test_internal_error_exits_3(checkdir: CheckDir) -> None:
    checkdir.write("checks/check_ok.py", "def check_ok(): pass")
    checkdir.write(
        "checks/conftest.py",
        """
        def fraiseql_report_result(result):
            raise ZeroDivisionError("a plugin bug")
        """,
    )
    result = checkdir.run()
    assert result.ret == 3
    result.stderr_lines(["INTERNALERROR> *", "INTERNALERROR> ZeroDivisionError: a plugin bug"])


def test_passing_run_exits_0_and_skips_are_allowed(checkdir: CheckDir) -> None:
    checkdir.write(
        "checks/check_ok.py",
        """
        import pytest

        def check_ok():
            pass

        @pytest.mark.skip(reason="not today")
        def check_skipped():
            pass
        """,
    )
    result = checkdir.run()
    assert result.ret == 0
    result.fnmatch_lines(["*1 passed, 1 skipped in *s*"])


@pytest.mark.parametrize("ending", ["passed", "failed", "timed out"])
def test_a_runs_result_has_each_field_from_where_it_comes(ending: str) -> None:
    """``_result`` builds the result positionally (faster than by keywords): each field
    must still come from its own source, as the same result built by keywords has it."""
    import dataclasses
    from pathlib import Path

    from fraiseql_checks.checks import Check
    from fraiseql_checks.core.runner import Ending, _result
    from fraiseql_checks.result import Outcome, Result
    from fraiseql_checks.spec import CheckSpec
    from fraiseql_checks.trace import RunContext

    check = Check(
        id="checks/check_x.py::check_x",
        name="check_x",
        function_name="check_x",
        path=Path("checks/check_x.py"),
        spec=CheckSpec(labels={"team": "db"}),
        module=None,  # type: ignore[arg-type]
        func=lambda: None,
        severity="critical",
    )
    run = RunContext(check, None, "1" * 32, "2" * 16)
    run.values["rows"] = 3.0
    run.extra["sql"] = "select 1"
    run.capture("stdout", "printed\n")
    run.capture("stderr", "warned\n")
    outcome = {"passed": Outcome.PASSED, "failed": Outcome.FAILED, "timed out": Outcome.ERROR}[ending]
    how = Ending(outcome, "the message", "the traceback", ending == "timed out", "database", "AssertionError")
    phases = {"setup": 0.1, "call": 0.2, "teardown": 0.3}
    made = _result(check, run, 1234.5, time.perf_counter(), how, "teardown", phases)
    failed = ending != "passed"
    expected = Result(
        id=check.id,
        name=check.name,
        outcome=outcome,
        message="the message",
        duration_s=made.duration_s,
        timed_out=ending == "timed out",
        severity="critical",
        labels={"team": "db"},
        trace_id="1" * 32,
        span_id="2" * 16,
        started_at=1234.5,
        values={"rows": 3.0},
        longrepr="the traceback",
        stdout="printed\n",
        stderr="warned\n",
        kind="check",
        unreachable="database" if ending == "failed" else "",
        extra={"sql": "select 1"},
        when="teardown",
        exc_type="AssertionError" if failed else "",
        phases=phases,
    )
    assert made == expected, [
        f.name for f in dataclasses.fields(Result) if getattr(made, f.name) != getattr(expected, f.name)
    ]
    assert 0 <= made.duration_s < 60
