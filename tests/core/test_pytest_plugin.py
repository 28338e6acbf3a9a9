"""``pytest --checks``: the same checks, fixtures and metadata inside a pytest run."""

from __future__ import annotations

import subprocess
import sys

from tests.support.checkdir import CheckDir, RunResult


def run_pytest(checkdir: CheckDir, *args: str) -> RunResult:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=checkdir.path,
        capture_output=True,
        text=True,
        env=checkdir.env(),
        timeout=120,
    )
    return RunResult(done.returncode, done.stdout, done.stderr)


def write_suite(checkdir: CheckDir) -> None:
    checkdir.write(
        "checks/conftest.py",
        """
        from fraiseql_checks import fixture

        @fixture(scope="session")
        async def pool():
            yield {"status": "healthy"}

        @fixture
        def marker(request):
            return request.node.id
        """,
    )
    checkdir.write(
        "checks/check_svc.py",
        """
        import pytest
        from fraiseql_checks import check, record

        @check(severity="critical", tags=["db"])
        async def check_healthy(pool, marker):
            record("answer", 42)
            assert pool["status"] == "healthy"
            assert marker.endswith("::check_healthy")

        def check_degraded(pool):
            assert pool == {"status": "degraded"}

        @pytest.mark.parametrize("n", [1, 2])
        def check_param(n):
            pass

        def check_skips():
            pytest.skip("no replica")
        """,
    )
    checkdir.write("tests/test_plain.py", "def test_plain():\n    assert True\n")


def test_checks_run_inside_pytest(checkdir: CheckDir) -> None:
    write_suite(checkdir)
    result = run_pytest(checkdir, "--checks", "checks/", "-v", "-rs")
    assert result.ret == 1, result.stdout + result.stderr
    result.fnmatch_lines(
        [
            "checks/check_svc.py::check_healthy PASSED*",
            "checks/check_svc.py::check_degraded FAILED*",
            "checks/check_svc.py::check_param[[]1] PASSED*",
            "checks/check_svc.py::check_param[[]2] PASSED*",
            "checks/check_svc.py::check_skips SKIPPED*",
            "*Differing items:*",
            "*{'status': 'healthy'} != {'status': 'degraded'}*",
            "*1 failed, 3 passed, 1 skipped*",
        ]
    )


def test_marks_tags_and_severity_select_under_pytest(checkdir: CheckDir) -> None:
    write_suite(checkdir)
    result = run_pytest(checkdir, "--checks", "checks/", "-m", "critical", "-q")
    assert result.ret == 0, result.stdout
    result.fnmatch_lines(["1 passed, 4 deselected*"])
    result = run_pytest(checkdir, "--checks", "checks/", "-m", "db", "-q")
    result.fnmatch_lines(["1 passed, 4 deselected*"])


def test_without_checks_pytest_is_untouched(checkdir: CheckDir) -> None:
    write_suite(checkdir)
    result = run_pytest(checkdir, "-q", "checks/", "tests/")
    assert result.ret == 0, result.stdout
    result.fnmatch_lines(["1 passed*"])
    assert "check_svc" not in result.stdout


def test_a_broken_check_file_is_a_collection_error_under_pytest(checkdir: CheckDir) -> None:
    checkdir.write("checks/check_broken.py", "import nope\n")
    checkdir.write("checks/check_fine.py", "def check_fine(): pass\n")
    result = run_pytest(checkdir, "--checks", "checks/", "-q")
    assert result.ret == 2
    result.fnmatch_lines(["*error importing check module: ModuleNotFoundError: No module named 'nope'*"])


def test_short_summary_lines_carry_the_message(checkdir: CheckDir) -> None:
    checkdir.write(
        "checks/check_msg.py",
        """
        def check_disk():
            assert False, "disk almost full"

        def check_compare():
            assert 1 == 2

        def check_raises():
            raise ValueError("no replica")
        """,
    )
    result = run_pytest(checkdir, "--checks", "checks", "-rf")
    assert result.ret == 1
    result.fnmatch_lines(
        [
            "*= short test summary info =*",
            "FAILED checks/check_msg.py::check_disk - AssertionError: disk almost full",
            "FAILED checks/check_msg.py::check_compare - assert 1 == 2",
            "FAILED checks/check_msg.py::check_raises - ValueError: no replica",
        ]
    )


def test_a_loop_stopped_from_a_thread_outside_any_run_is_run_on_under_pytest(checkdir: CheckDir) -> None:
    """As in ``fraiseql-check``: a stop from an executor's thread (which has no run) does
    not end the check's run with ``Event loop stopped before Future completed``."""
    checkdir.write(
        "checks/check_stop.py",
        """
        import asyncio

        async def check_stops_the_loop_from_an_executor():
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, loop.call_soon_threadsafe, loop.stop)
            await asyncio.sleep(0.05)
        """,
    )
    result = run_pytest(checkdir, "--checks", "checks")
    assert result.ret == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
