"""``--durations N``: the slowest set-ups, checks and teardowns, as pytest lists them."""

from __future__ import annotations

from tests.support.checkdir import CheckDir

TIMED = """
import time
from fraiseql_checks import fixture

@fixture
def slow_setup():
    time.sleep(0.3)
    yield
    time.sleep(0.2)

def check_slow():
    time.sleep(0.5)

def check_with_fixture(slow_setup):
    pass

def check_fast():
    pass

def check_faster():
    pass
"""


def test_slowest_durations(checkdir: CheckDir) -> None:
    checkdir.write("checks/check_timed.py", TIMED)
    result = checkdir.run("--durations", "3")
    assert result.ret == 0
    lines = result.outlines
    start = lines.index("=" * 29 + " slowest 3 durations " + "=" * 30)  # pytest's own line at 80 columns
    # the slowest first; each phase of each check is a line of its own
    assert [line.split()[1:] for line in lines[start + 1 : start + 4]] == [
        ["call", "checks/check_timed.py::check_slow"],
        ["setup", "checks/check_timed.py::check_with_fixture"],
        ["teardown", "checks/check_timed.py::check_with_fixture"],
    ]
    assert lines[start + 1].endswith("s call     checks/check_timed.py::check_slow")
    assert lines[start + 4].startswith("=") and "4 passed" in lines[start + 4]


def test_durations_zero_shows_all_and_hides_the_short_ones(checkdir: CheckDir) -> None:
    checkdir.write("checks/check_timed.py", TIMED)
    result = checkdir.run("--durations=0")
    result.fnmatch_lines(
        [
            "*= slowest durations =*",
            "*s call     checks/check_timed.py::check_slow",
            "*s setup    checks/check_timed.py::check_with_fixture",
            "*s teardown checks/check_timed.py::check_with_fixture",
            "",
            "(* durations < 0.005s hidden.  Use -vv to show these durations.)",
        ]
    )
    everything = checkdir.run("--durations=0", "--durations-min=0")
    listed = [line for line in everything.outlines if line.endswith(("check_fast", "check_faster"))]
    assert sorted(line.split()[1] for line in listed) == ["call", "call", "setup", "setup", "teardown", "teardown"]
    assert not any("hidden" in line for line in everything.outlines)
    assert "slowest" not in checkdir.run().stdout
