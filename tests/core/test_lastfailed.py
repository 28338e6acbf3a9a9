"""``--lf`` and ``--ff``: the last run's failures, kept in the cache folder, rerun or run first."""

from __future__ import annotations

import json

from tests.support.checkdir import CheckDir

SUITE = """
import os

def check_a_passes():
    pass

def check_b_fails():
    assert os.environ.get("FIXED") == "1"

def check_c_errs():
    if os.environ.get("FIXED") != "1":
        raise ValueError("broken")
"""


def test_last_failed_reruns_only_the_failures(checkdir: CheckDir) -> None:
    checkdir.write("checks/check_lf.py", SUITE)
    first = checkdir.run()
    assert first.ret == 1
    saved = json.loads((checkdir.path / ".fraiseql-checks" / "cache" / "lastfailed.json").read_text())
    assert saved == {"checks/check_lf.py::check_b_fails": True, "checks/check_lf.py::check_c_errs": True}

    again, report = checkdir.run_json("--lf")
    assert again.ret == 1
    again.fnmatch_lines(
        [
            "collected 3 checks / 1 deselected / 2 selected",
            "run-last-failure: rerun previous 2 failures",
            "*= 1 failed, 1 deselected, 1 error in *",
        ]
    )
    assert sorted(r["name"] for r in report["results"]) == ["check_b_fails", "check_c_errs"]

    fixed = checkdir.run("--last-failed", env={"FIXED": "1"})
    assert fixed.ret == 0
    fixed.fnmatch_lines(["run-last-failure: rerun previous 2 failures", "*= 2 passed, 1 deselected in *"])
    nothing = checkdir.run("--lf")
    assert nothing.ret == 1  # no known failures: everything runs
    nothing.fnmatch_lines(["run-last-failure: no previously failed checks, not deselecting items."])


def test_failed_first_runs_everything_failures_first(checkdir: CheckDir) -> None:
    checkdir.write("checks/check_lf.py", SUITE)
    checkdir.run()
    result = checkdir.run("--ff", "-v", "--concurrency", "1")
    result.fnmatch_lines(
        [
            "collected 3 checks",
            "run-last-failure: rerun previous 2 failures first",
            "",
            "checks/check_lf.py::check_b_fails FAILED*",
            "checks/check_lf.py::check_c_errs ERROR*",
            "checks/check_lf.py::check_a_passes PASSED*",
        ]
    )


def test_a_file_that_did_not_collect_is_rerun_whole(checkdir: CheckDir) -> None:
    checkdir.write("checks/check_ok.py", "def check_ok(): pass")
    checkdir.write("checks/check_late.py", "import nope\ndef check_x(): pass\ndef check_y(): pass")
    assert checkdir.run().ret == 2
    checkdir.write("checks/check_late.py", "def check_x(): pass\ndef check_y(): pass")
    result, report = checkdir.run_json("--lf")
    assert result.ret == 0
    assert sorted(r["name"] for r in report["results"]) == ["check_x", "check_y"]
    result.fnmatch_lines(["run-last-failure: rerun previous 2 failures"])


def test_p_no_lastfailed_keeps_no_cache(checkdir: CheckDir) -> None:
    checkdir.write("checks/check_lf.py", SUITE)
    assert checkdir.run("-p", "no:lastfailed").ret == 1
    assert not (checkdir.path / ".fraiseql-checks" / "cache" / "lastfailed.json").exists()
    refused = checkdir.run("-p", "no:lastfailed", "--lf")
    assert refused.ret == 4
    refused.stderr_lines(["ERROR: unrecognized arguments: --lf"])
