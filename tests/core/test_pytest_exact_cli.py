"""Where a pytest user's habits meet the command line: node ids not found, -x and
--maxfail, no abbreviated options, --co (each compared with what pytest 9 prints)."""

from __future__ import annotations

import pytest

from tests.support.checkdir import CheckDir

IDS = """
import pytest

def check_one():
    pass

@pytest.mark.parametrize("n", [1, 2])
def check_param(n):
    pass
"""


def test_a_node_id_that_matches_nothing_is_refused_as_pytest_does(checkdir: CheckDir) -> None:
    checkdir.write("checks/check_ids.py", IDS)
    result = checkdir.run("checks/check_ids.py::nope", "checks/check_ids.py::check_one")
    assert result.ret == 4
    where = checkdir.path.resolve() / "checks" / "check_ids.py"
    assert result.stderr.splitlines() == [
        f"ERROR: not found: {where}::nope",
        "(no match in any of [<Module check_ids.py>])",
    ]
    assert "passed" not in result.stdout  # nothing ran, not even the id that exists
    missing_param = checkdir.run("checks/check_ids.py::check_param[3]")
    assert missing_param.ret == 4
    missing_param.stderr_lines([f"ERROR: not found: {where}::check_param[3]"])
    found = checkdir.run("checks/check_ids.py::check_param[2]", "checks/check_ids.py::check_one")
    assert found.ret == 0
    found.fnmatch_lines(["*= 2 passed in *"])


def test_paths_that_do_not_exist_or_cannot_hold_a_node_id(checkdir: CheckDir) -> None:
    checkdir.write("checks/check_ids.py", IDS)
    missing = checkdir.run("checks/check_nowhere.py")
    assert missing.ret == 4
    assert missing.stderr.splitlines() == ["ERROR: file or directory not found: checks/check_nowhere.py"]
    folder = checkdir.run("checks::check_one")
    assert folder.ret == 4
    assert folder.stderr.splitlines() == [
        "ERROR: directory argument cannot contain :: selection parts: checks::check_one"
    ]


STOPPING = """
import asyncio, threading
import pytest

async def check_fails_at_once():
    assert 1 == 2

async def check_errs_at_once():
    raise ValueError("broken")

@pytest.mark.parametrize("n", range(3))
async def check_would_hang(n):
    await asyncio.sleep(3600)

def check_hangs_in_a_thread():
    threading.Event().wait(3600)
"""


def stopping(kind: str) -> str:
    """``STOPPING`` with its checks as ``kind`` (``def``: hanging in their threads)."""
    if kind == "async def":
        return STOPPING
    return STOPPING.replace("async def check_", "def check_").replace(
        "await asyncio.sleep(3600)", "threading.Event().wait(3600)"
    )


@pytest.mark.parametrize("kind", ["async def", "def"])
def test_exitfirst_cancels_what_is_still_running(checkdir: CheckDir, kind: str) -> None:
    # the def checks without fixtures run without a task of their own (Runner.start_sync)
    checkdir.write("checks/check_stop.py", stopping(kind))
    # at the default concurrency every check has started when the first one fails
    result, report = checkdir.run_json("-x", "--timeout", "60s")
    assert result.ret == 1
    assert report["summary"]["total"] == 1  # the cancelled checks are not results
    (only,) = report["results"]
    assert only["id"] in ("checks/check_stop.py::check_fails_at_once", "checks/check_stop.py::check_errs_at_once")
    lines = result.outlines
    stop = lines.index("!" * 26 + " stopping after 1 failures " + "!" * 27)
    assert lines[stop - 2].endswith(" short check summary info " + "=" * 27)  # after the short summary, as pytest
    assert lines[stop - 1].startswith(("FAILED ", "ERROR "))
    assert lines[stop + 1].startswith("=") and " in " in lines[stop + 1]
    assert ("1 failed in " in lines[stop + 1]) != ("1 error in " in lines[stop + 1])


def test_exitfirst_after_a_failed_module_teardown_cancels_what_is_still_running(checkdir: CheckDir) -> None:
    """A module fixture's teardown that fails is a failure ``-x`` stops at, as a check's
    is: the runs still under way are cancelled (not results), not left to finish."""
    checkdir.write(
        "checks/check_a.py",
        """
        from fraiseql_checks import fixture

        @fixture(scope="module")
        def broken():
            yield 1
            raise RuntimeError("teardown fails")

        def check_uses(broken):
            pass
        """,
    )
    checkdir.write("checks/check_b.py", "import asyncio\n\nasync def check_slow():\n    await asyncio.sleep(3600)\n")
    result, report = checkdir.run_json("-x", "--timeout", "60s")
    assert result.ret == 1
    assert sorted(entry["id"] for entry in report["results"]) == [
        "checks/check_a.py::broken",
        "checks/check_a.py::check_uses",
    ]
    result.fnmatch_lines(["*stopping after 1 failures*", "*= 1 passed, 1 error in *"])


def test_exitfirst_drops_a_def_checks_awaitable_that_ended_in_the_same_turn(checkdir: CheckDir) -> None:
    """Two ``def`` checks return awaitables that end in the same turn of the loop, one
    failing: after ``-x`` the other's end, already on its way, is not a result."""
    checkdir.write(
        "checks/check_race.py",
        """
        import asyncio

        gate = None

        async def wait_then(fail):
            global gate
            if gate is None:
                gate = asyncio.get_running_loop().create_future()
                asyncio.get_running_loop().call_later(0.2, gate.set_result, None)
            await gate
            assert not fail, "boom"

        def check_a_fails():
            return wait_then(True)

        def check_b_passes():
            return wait_then(False)
        """,
    )
    result, report = checkdir.run_json("-x")
    assert result.ret == 1
    assert [r["id"] for r in report["results"]] == ["checks/check_race.py::check_a_fails"]


def test_exitfirst_lets_a_check_in_its_fixtures_teardown_end_and_be_reported(checkdir: CheckDir) -> None:
    """A check whose own call ended is in its fixture's teardown when another fails:
    ``-x`` does not cut the teardown short, and the check is reported, as it ended."""
    checkdir.write(
        "checks/conftest.py",
        """
        import asyncio, pathlib
        from fraiseql_checks import fixture

        @fixture
        async def resource():
            yield 1
            await asyncio.sleep(0.5)
            pathlib.Path("torn-down").write_text("yes")
        """,
    )
    checkdir.write(
        "checks/check_td.py",
        """
        import asyncio

        async def check_uses(resource):
            pass

        async def check_fails_later():
            await asyncio.sleep(0.2)
            assert False
        """,
    )
    result, report = checkdir.run_json("-x")
    assert result.ret == 1
    outcomes = {r["id"].rsplit("::", 1)[1]: r["outcome"] for r in report["results"]}
    assert outcomes == {"check_uses": "passed", "check_fails_later": "failed"}
    assert (checkdir.path / "torn-down").read_text() == "yes"


@pytest.mark.parametrize("kind", ["async def", "def"])
def test_maxfail_stops_after_that_many(checkdir: CheckDir, kind: str) -> None:
    checkdir.write("checks/check_stop.py", stopping(kind))
    result, report = checkdir.run_json("--maxfail", "2", "--timeout", "60s")
    assert result.ret == 1
    assert {r["outcome"] for r in report["results"]} == {"failed", "error"}
    assert report["summary"]["total"] == 2
    result.fnmatch_lines(
        ["*short check summary info*", "!!!* stopping after 2 failures *!!!", "*= 1 failed, 1 error in *"]
    )
    bad = checkdir.run("--maxfail", "two")
    assert bad.ret == 4
    assert bad.stderr.splitlines() == ["ERROR: argument --maxfail: invalid int value: 'two'"]
    negative = checkdir.run("--maxfail", "-1")  # not "never stop" in silence
    assert negative.ret == 4
    assert negative.stderr.splitlines() == ["ERROR: argument --maxfail: expected 0 (no limit) or more, got -1"]


def test_exitfirst_with_a_file_that_does_not_collect_runs_nothing(checkdir: CheckDir) -> None:
    checkdir.write("checks/check_broken.py", "import nope")
    checkdir.write("checks/check_ok.py", "def check_ok(): pass")
    result, report = checkdir.run_json("-x")
    assert result.ret == 2
    assert [r["id"] for r in report["results"]] == ["checks/check_broken.py"]


def test_no_abbreviations_and_co_is_collect_only(checkdir: CheckDir) -> None:
    checkdir.write("checks/check_ids.py", IDS)
    co = checkdir.run("--co")
    assert co.ret == 0, co.stderr
    co.fnmatch_lines(["checks/check_ids.py::check_one", "*= 3 checks collected in *"])
    watc = checkdir.run("--watc")
    assert watc.ret == 4
    assert watc.stderr.splitlines() == ["ERROR: unrecognized arguments: --watc"]
    concurrency = checkdir.run("--concur", "1")
    assert concurrency.ret == 4
    # a subcommand's parser takes none either
    generate = checkdir.run("generate", "alerts", "--chec")
    assert generate.ret == 4
    assert generate.stderr.splitlines() == ["ERROR: unrecognized arguments: --chec"]
