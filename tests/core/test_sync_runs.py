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
import asyncio, json, sys
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
            task_result = await runner.run_check(check)
            loop = asyncio.get_running_loop()
            ended = loop.create_future()
            run = runner.start_sync(check, lambda run, result: ended.set_result((run, result)), "tag")
            direct = None
            if run is not None:
                got, result = await asyncio.wait_for(ended, 10)
                assert got is run and run.tag == "tag" and run.check is check
                direct = fields(result)
            out[check.id] = {"task": fields(task_result), "direct": direct}
    print(json.dumps(out))

config, _ = configure([], invocation_dir=Path.cwd())
config.hook.fraiseql_configure(config=config)
session = Session(config)
config.hook.fraiseql_sessionstart(session=session)
session.collect()
asyncio.run(main(session))
"""


def run_both(checkdir: CheckDir) -> dict[str, dict[str, Any]]:
    checkdir.write("checks/check_kinds.py", CHECKS)
    driver = checkdir.write("driver.py", DRIVER)
    done = subprocess.run(
        [sys.executable, str(driver)],
        cwd=checkdir.path,
        capture_output=True,
        text=True,
        timeout=120,
        env=checkdir.env(),
    )
    assert done.returncode == 0, done.stderr
    found: dict[str, dict[str, Any]] = json.loads(done.stdout.strip().splitlines()[-1])
    return {key.rsplit("::", 1)[1]: value for key, value in found.items()}


def test_a_def_check_without_fixtures_runs_without_a_task_to_the_same_result(checkdir: CheckDir) -> None:
    results = run_both(checkdir)
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
    assert direct["check_passes"]["phases"] == ["call", "setup", "teardown"]
    assert direct["check_passes"]["ids"] == [32, 16]


def test_a_def_check_with_a_fixture_is_left_to_run_check(checkdir: CheckDir) -> None:
    checkdir.write(
        "checks/check_kinds.py",
        """
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
        """,
    )
    driver = checkdir.write("driver.py", DRIVER)
    done = subprocess.run(
        [sys.executable, str(driver)],
        cwd=checkdir.path,
        capture_output=True,
        text=True,
        timeout=120,
        env=checkdir.env(),
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])
    found = {key.rsplit("::", 1)[1]: value for key, value in found.items()}
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
