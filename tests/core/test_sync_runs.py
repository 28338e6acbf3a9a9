"""Runs of ``def`` checks without a task (``Runner.start_sync``, what a watch-mode worker
uses for a ``def`` check that needs no fixture) end as ``Runner.run_check`` ends them.

Each check of one file runs both ways in the same process, and the two results are
compared field by field; what each should be is asserted on its own too (run_check's
own tests assert it for the one-shot run)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from tests.support.checkdir import CheckDir

CHECKS = """
import asyncio, sys, time
import pytest
from fraiseql_checks import check, record
from fraiseql_checks.errors import TargetError

def check_passes():
    pass

def check_asserts():
    value = 1
    assert value == 2

def check_raises():
    raise ValueError("the value")

def check_skips():
    pytest.skip("not today")

def check_fails():
    pytest.fail("no")

def check_exits():
    sys.exit(3)

def check_cancels_itself():
    raise asyncio.CancelledError()

def check_unreachable():
    raise TargetError("database: connection refused", target="database", unreachable=True)

def check_records_and_prints():
    record("lag_seconds", 1.5)
    print("hello from the check")
    print("and its stderr", file=sys.stderr)

@check(timeout="0.3s")
def check_hangs():
    time.sleep(30)

async def _later(fail):
    await asyncio.sleep(0)
    assert not fail, "awaited and failed"

def check_returns_an_awaitable():
    return _later(False)

def check_returns_an_awaitable_that_fails():
    return _later(True)

@check(timeout="0.3s")
def check_returns_an_awaitable_that_hangs():
    return asyncio.sleep(30)

@pytest.mark.parametrize("n", [1, 2])
def check_parametrized(n):
    assert n == 1

class BadRepr:
    def __repr__(self):
        raise RuntimeError("no repr")

def check_exits_with_a_code_that_cannot_be_shown():
    sys.exit(BadRepr())

class NoClass:
    @property
    def __class__(self):
        raise RuntimeError("no class for you")

def check_returns_what_cannot_be_asked_if_it_is_awaitable():
    return NoClass()

@pytest.mark.skip(reason="marked")
def check_marked_skip():
    pass

@pytest.mark.skipif(False, reason="not now")
def check_marked_skipif_false():
    pass
"""

#: Runs every check of the folder through ``run_check`` and through ``start_sync`` (when it
#: takes the check), one at a time, and prints both results as JSON.
DRIVER = """
import asyncio, json, os, sys
from pathlib import Path
from fraiseql_checks.cli import configure
from fraiseql_checks.core.runner import Runner
from fraiseql_checks.core.session import Session

FIELDS = ("outcome", "message", "longrepr", "timed_out", "unreachable", "exc_type", "values", "stdout",
          "stderr", "when", "extra", "severity", "labels", "id", "name")

def fields(result):
    data = {name: getattr(result, name) for name in FIELDS}
    data["outcome"] = result.outcome.value
    data["phases"] = sorted(result.phases)
    data["ids"] = [len(result.trace_id), len(result.span_id)]
    return data

async def main(session):
    out = {}
    async with Runner(session) as runner:
        for check in session.checks:
            task_result = None if os.environ.get("DIRECT_ONLY") else fields(await runner.run_check(check))
            loop = asyncio.get_running_loop()
            ended = loop.create_future()
            run = runner.start_sync(check, lambda run, result: ended.set_result((run, result)), "tag")
            direct = None
            if run is not None:
                got, result = await asyncio.wait_for(ended, 10)
                assert got is run and run.tag == "tag" and run.check is check
                direct = fields(result)
            out[check.id] = {"task": task_result, "direct": direct}
    print(json.dumps(out))

if os.environ.get("BREAK_RESULTS"):  # a bug of ours in building a result, as a test's mutation
    import fraiseql_checks.core.runner as runner_module

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    runner_module._result = broken

config, _ = configure([], invocation_dir=Path.cwd())
config.hook.fraiseql_configure(config=config)
session = Session(config)
config.hook.fraiseql_sessionstart(session=session)
session.collect()
asyncio.run(main(session))
"""


def drive(checkdir: CheckDir, checks: str, **env: str) -> dict[str, dict[str, Any]]:
    """``checks`` as the folder's one check file, run by ``DRIVER``: each check's results
    by its name (``task``: through ``run_check``; ``direct``: through ``start_sync``)."""
    checkdir.write("checks/check_kinds.py", checks)
    driver = checkdir.write("driver.py", DRIVER)
    done = subprocess.run(
        [sys.executable, str(driver)],
        cwd=checkdir.path,
        capture_output=True,
        text=True,
        timeout=120,
        env=checkdir.env(**env),
    )
    assert done.returncode == 0, done.stderr
    found: dict[str, dict[str, Any]] = json.loads(done.stdout.strip().splitlines()[-1])
    return {key.rsplit("::", 1)[1]: value for key, value in found.items()}


def test_a_def_check_without_fixtures_runs_without_a_task_to_the_same_result(checkdir: CheckDir) -> None:
    results = drive(checkdir, CHECKS)
    taken = {name for name, both in results.items() if both["direct"] is not None}
    # Every def check without fixtures is taken; one with a skip or skipif mark is left to
    # run_check, which evaluates the condition (once a run).
    assert taken == set(results) - {"check_marked_skip", "check_marked_skipif_false"}
    for name in taken:
        assert results[name]["direct"] == results[name]["task"], name
    outcome = {name: both["task"]["outcome"] for name, both in results.items()}
    assert outcome == {
        "check_passes": "passed",
        "check_asserts": "failed",
        "check_raises": "error",
        "check_skips": "skipped",
        "check_fails": "failed",
        "check_exits": "error",
        "check_cancels_itself": "error",
        "check_unreachable": "failed",
        "check_records_and_prints": "passed",
        "check_hangs": "error",
        "check_returns_an_awaitable": "passed",
        "check_returns_an_awaitable_that_fails": "failed",
        "check_returns_an_awaitable_that_hangs": "error",
        "check_parametrized[1]": "passed",
        "check_parametrized[2]": "failed",
        "check_exits_with_a_code_that_cannot_be_shown": "error",
        "check_returns_what_cannot_be_asked_if_it_is_awaitable": "error",
        "check_marked_skip": "skipped",
        "check_marked_skipif_false": "passed",
    }
    direct = {name: both["direct"] for name, both in results.items() if both["direct"] is not None}
    assert direct["check_asserts"]["message"].startswith("assert 1 == 2")
    assert direct["check_raises"]["message"] == "ValueError: the value"
    assert direct["check_raises"]["exc_type"] == "ValueError"
    assert direct["check_skips"]["message"] == "not today"
    assert direct["check_exits"]["exc_type"] == "SystemExit"
    assert direct["check_unreachable"]["unreachable"] == "database"
    assert direct["check_records_and_prints"]["values"] == {"lag_seconds": 1.5}
    assert "hello from the check" in direct["check_records_and_prints"]["stdout"]
    assert "and its stderr" in direct["check_records_and_prints"]["stderr"]
    for name in ("check_hangs", "check_returns_an_awaitable_that_hangs"):
        assert direct[name]["message"] == "timed out after 0.3s", name
        assert direct[name]["timed_out"] and direct[name]["exc_type"] == "TimeoutError", name
    assert direct["check_returns_an_awaitable_that_fails"]["message"].startswith("awaited and failed")
    assert direct["check_exits_with_a_code_that_cannot_be_shown"]["message"] == (
        "SystemExit raised, and describing it failed: RuntimeError (in its __str__ or __repr__?)"
    )
    # asked on the check's thread, within its deadline: an error at once, not a timeout
    assert direct["check_returns_what_cannot_be_asked_if_it_is_awaitable"]["message"] == (
        "RuntimeError: no class for you"
    )
    assert direct["check_passes"]["phases"] == ["call", "setup", "teardown"]
    assert direct["check_passes"]["ids"] == [32, 16]


#: Checks whose runs end differently without a task: run only that way (``DIRECT_ONLY``).
DIRECT_ONLY = """
import asyncio, time
from fraiseql_checks import check

class SlowToDescribe(Exception):
    def __str__(self):
        time.sleep(5)
        return "at last"

@check(timeout="0.3s")
def check_raises_what_takes_long_to_describe():
    raise SlowToDescribe()

async def _raise_slow_to_describe():
    raise SlowToDescribe()

@check(timeout="0.3s")
def check_returns_an_awaitable_raising_what_takes_long_to_describe():
    return _raise_slow_to_describe()

async def _cancel_own_task():
    asyncio.current_task().cancel()
    await asyncio.sleep(0)

def check_returns_an_awaitable_that_cancels_its_task():
    return _cancel_own_task()
"""


def test_what_a_check_raised_is_described_within_its_deadline_and_an_awaitable_cancelled_ends(
    checkdir: CheckDir,
) -> None:
    """Without a task, what the check raised is described on its thread while its deadline
    holds: an exception whose text takes longer than the timeout ends the run timed out,
    and holds no event loop (through ``run_check`` the loop would be held while the
    message is made). An awaitable returned that cancels its own task ends the run as an
    error, with a result (``run_check``'s task would be cancelled, and no result given)."""
    found = {name: both["direct"] for name, both in drive(checkdir, DIRECT_ONLY, DIRECT_ONLY="1").items()}
    slow = found["check_raises_what_takes_long_to_describe"]
    assert (slow["outcome"], slow["message"], slow["timed_out"]) == ("error", "timed out after 0.3s", True)
    # Awaited on the loop, it is described there: the blocked-loop guard interrupts the
    # description at the deadline, and the run still ends, saying so.
    awaited = found["check_returns_an_awaitable_raising_what_takes_long_to_describe"]
    assert awaited["outcome"] == "error"
    assert awaited["message"].startswith("SlowToDescribe raised, and describing it failed: LoopBlocked")
    cancelled = found["check_returns_an_awaitable_that_cancels_its_task"]
    assert (cancelled["outcome"], cancelled["exc_type"]) == ("error", "CancelledError")


def test_a_def_check_with_a_fixture_is_left_to_run_check(checkdir: CheckDir) -> None:
    fixtures = """
        from fraiseql_checks import fixture

        @fixture
        def answer():
            return 42

        def check_uses_a_fixture(answer):
            assert answer == 42

        def check_names_an_unknown_fixture(question):
            pass

        async def check_async():
            pass
        """
    found = drive(checkdir, fixtures)  # written dedented, as every check file
    assert {name: value["direct"] for name, value in found.items()} == {
        "check_uses_a_fixture": None,
        "check_names_an_unknown_fixture": None,
        "check_async": None,
    }
    assert {name: value["task"]["outcome"] for name, value in found.items()} == {
        "check_uses_a_fixture": "passed",
        "check_names_an_unknown_fixture": "error",
        "check_async": "passed",
    }


def test_a_run_without_a_task_ends_though_building_its_result_fails(checkdir: CheckDir) -> None:
    """Its end is called from the lane's batch or the watchdog's tick, where an exception
    would only be logged: a bug of ours in building the result still ends the run, as
    an error saying so (a one-shot run would wait for it for ever, a worker keep it)."""
    found = drive(checkdir, "def check_passes():\n    pass\n", DIRECT_ONLY="1", BREAK_RESULTS="1")
    result = found["check_passes"]["direct"]
    assert (result["outcome"], result["exc_type"]) == ("error", "RuntimeError")
    assert result["message"] == "internal error building the check's result: RuntimeError"
