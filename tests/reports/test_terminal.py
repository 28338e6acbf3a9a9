"""The terminal output: header, progress, sections, the final line, -q and -v."""

from __future__ import annotations

import threading

from tests.support.checkdir import CheckDir

SUITE = """
import pytest

def check_ok():
    pass

def check_bad():
    assert 1 == 2

@pytest.mark.skip(reason="replica not configured: set FRAISEQL_URL")
def check_skip():
    pass

def check_err():
    raise ValueError("no")
"""


def test_default_output(checkdir: CheckDir) -> None:
    checkdir.write("checks/check_t.py", SUITE)
    result = checkdir.run()
    assert result.ret == 1
    result.fnmatch_lines(
        [
            "*= fraiseql-check session starts =*",
            "platform * -- Python *, fraiseql-checks *, pytest *",
            "rootdir: *",
            "collected 4 checks",
            "",
            "[.FsE][.FsE][.FsE][.FsE] * [[]100%]",
            "*= ERRORS =*",
            "*_ ERROR at call of check_err _*",
            "*= FAILURES =*",
            "*_ check_bad _*",
            "*= short check summary info =*",
            "FAILED checks/check_t.py::check_bad - assert 1 == 2",
            "ERROR checks/check_t.py::check_err - ValueError: no",
            "SKIPPED [1] checks/check_t.py: replica not configured: set FRAISEQL_URL",
            "*= 1 failed, 1 passed, 1 skipped, 1 error in *s =*",
        ]
    )


def test_verbose_and_quiet(checkdir: CheckDir) -> None:
    checkdir.write("checks/check_t.py", SUITE)
    verbose = checkdir.run("-v")
    lines = [line for line in verbose.outlines if line.startswith("checks/check_t.py::")]
    assert len(lines) == 4  # one per check, in the order they finished
    assert sorted(line.split()[1] for line in lines) == ["ERROR", "FAILED", "PASSED", "SKIPPED"]
    assert all(line.endswith("%]") and len(line) >= 80 for line in lines)  # long ones overflow, as in pytest
    assert any("check_skip SKIPPED (replica not configured: set FRAISEQL_URL)" in line for line in lines)
    quiet = checkdir.run("-q")
    assert not any("session starts" in line for line in quiet.outlines)
    assert quiet.outlines[-1] == "1 failed, 1 passed, 1 skipped, 1 error in " + quiet.outlines[-1].split(" in ")[1]
    very_quiet = checkdir.run("-qq")
    assert very_quiet.outlines[-1].startswith("1 failed, 1 passed, 1 skipped, 1 error in ")


def test_colors_follow_the_option(checkdir: CheckDir) -> None:
    checkdir.write("checks/check_ok.py", "def check_ok(): pass")
    assert "\x1b[" in checkdir.run("--color=yes").stdout
    assert "\x1b[" not in checkdir.run("--color=no").stdout


def test_tb_styles(checkdir: CheckDir) -> None:
    checkdir.write("checks/check_t.py", "def helper():\n    raise ValueError('deep')\n\ndef check_t():\n    helper()\n")
    long = checkdir.run("--tb=long")
    long.fnmatch_lines(
        [
            "    def check_t():",
            ">       helper()",
            "*",
            "    def helper():",
            ">       raise ValueError('deep')",
            "E       ValueError: deep",
        ]
    )
    none = checkdir.run("--tb=no")
    assert not any(">" in line and "helper" in line for line in none.outlines)


ORDERED = """
import asyncio
from fraiseql_checks import fixture

@fixture
def broken():
    raise RuntimeError("cannot connect")

async def check_first_fails_last():
    await asyncio.sleep(0.5)
    assert 1 == 2

def check_second_fails_at_once():
    assert False, "disk almost full"

def check_setup_error(broken):
    pass

async def check_errs_last():
    await asyncio.sleep(0.5)
    raise ValueError("late")
"""


def test_errors_and_failures_sections_in_collection_order(checkdir: CheckDir) -> None:
    checkdir.write("checks/check_order.py", ORDERED)
    checkdir.write("checks/check_broken.py", "import nope")
    result = checkdir.run()
    assert result.ret == 2
    result.fnmatch_lines(
        [
            "collected 4 checks / 1 error",
            "*= ERRORS =*",
            "*_ ERROR collecting checks/check_broken.py _*",
            "*_ ERROR at setup of check_setup_error _*",
            "*_ ERROR at call of check_errs_last _*",
            "*= FAILURES =*",
            "*_ check_first_fails_last _*",
            "*_ check_second_fails_at_once _*",
            "*= short check summary info =*",
            "FAILED checks/check_order.py::check_first_fails_last - assert 1 == 2",
            "FAILED checks/check_order.py::check_second_fails_at_once - AssertionError: disk almost full",
            "ERROR checks/check_broken.py - error importing check module: ModuleNotFoundError: No module named 'nope'",
            "ERROR checks/check_order.py::check_setup_error - fixture 'broken' failed: RuntimeError: cannot connect",
            "ERROR checks/check_order.py::check_errs_last - ValueError: late",
            "*= 2 failed, 3 errors in *",
        ]
    )


def test_one_error_is_singular(checkdir: CheckDir) -> None:
    checkdir.write("checks/check_one.py", "def check_one():\n    raise ValueError('x')\ndef check_ok(): pass")
    assert checkdir.run("-q").outlines[-1].startswith("1 passed, 1 error in ")
    checkdir.write("checks/check_one.py", "def check_one(): pass")
    assert checkdir.run("--co", "-q").outlines[-1].startswith("1 check collected in ")


def test_watch_mode_says_watching_1_check(checkdir: CheckDir) -> None:
    checkdir.write("checks/check_one.py", "def check_one(): pass")
    process = checkdir.popen("--watch", "--listen", "127.0.0.1:0")
    guard = threading.Timer(60, process.kill)  # a watcher that never says it: the loop below ends
    guard.start()
    try:
        assert process.stdout is not None
        said = next((line for line in process.stdout if "watching " in line), "")
        assert "watching 1 check in " in said, said
    finally:
        guard.cancel()
        process.kill()
        process.communicate()
