"""The terminal output: header, progress, sections, the final line, -q and -v."""

from __future__ import annotations

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
            "*= FAILURES =*",
            "*_ check_bad _*",
            "*= short check summary info =*",
            "FAILED checks/check_t.py::check_bad - assert 1 == 2",
            "ERROR checks/check_t.py::check_err - ValueError: no",
            "SKIPPED [1] checks/check_t.py: replica not configured: set FRAISEQL_URL",
            "*= 1 passed, 1 failed, 1 error, 1 skipped in *s =*",
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
    assert quiet.outlines[-1] == "1 passed, 1 failed, 1 error, 1 skipped in " + quiet.outlines[-1].split(" in ")[1]
    very_quiet = checkdir.run("-qq")
    assert very_quiet.outlines[-1].startswith("1 passed, 1 failed, 1 error, 1 skipped in ")


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
