"""pytest's habits inside checks: assertion explanations, skip, fail, approx, raises, marks."""

from __future__ import annotations

import marshal
import re
import subprocess
import sys
from pathlib import Path

import pytest

from fraiseql_checks.core._pytest_compat import rewrite_module
from tests.support.checkdir import CheckDir


def test_failing_asserts_explain_values_and_diffs_as_pytest_does(checkdir: CheckDir) -> None:
    checkdir.write(
        "checks/check_explain.py",
        """
        class Response:
            status = 404

        def check_status():
            resp = Response()
            assert resp.status == 200

        def check_dict():
            assert {"status": "degraded", "version": "2.1"} == {"status": "healthy", "version": "2.1"}

        def check_list():
            assert [1, 2, 3] == [1, 2, 4]

        def check_message():
            count = 12
            assert count <= 10, f"{count} failed logins in 5 minutes"
        """,
    )
    result, report = checkdir.run_json()
    messages = {r["name"]: r["message"] for r in report["results"]}
    status_lines = messages["check_status"].splitlines()
    assert status_lines[0] == "assert 404 == 200"
    assert status_lines[1].startswith(" +  where 404 = <checks.check_explain.Response object at 0x")
    assert status_lines[1].endswith(">.status")
    assert "Differing items:" in messages["check_dict"]
    assert "{'status': 'degraded'} != {'status': 'healthy'}" in messages["check_dict"]
    assert "At index 2 diff: 3 != 4" in messages["check_list"]
    assert messages["check_message"].splitlines()[:2] == ["12 failed logins in 5 minutes", "assert 12 <= 10"]
    result.fnmatch_lines(
        [
            "*_ check_status _*",
            "checks/check_explain.py:*: in check_status",
            "    assert resp.status == 200",
            "E   assert 404 == 200",
            "E    +  where 404 = *.status",
        ]
    )
    verbose = checkdir.run("-vv", "checks/check_explain.py::check_list")
    verbose.fnmatch_lines(["*Full diff:*"])
    # The next run reads the rewritten code from the cache and has not loaded pytest's
    # assertion code when the first assert fails: its helpers load then, explanations too.
    _, cached = checkdir.run_json()
    address = re.compile(r"0x[0-9a-f]+")
    assert {r["name"]: address.sub("0x", r["message"]) for r in cached["results"]} == {
        name: address.sub("0x", message) for name, message in messages.items()
    }


def test_pytest_helpers_work_inside_checks(checkdir: CheckDir) -> None:
    checkdir.write(
        "checks/check_helpers.py",
        """
        import sys
        import pytest

        def check_skip_inside():
            pytest.skip("replica not configured")

        def check_fail_inside():
            pytest.fail("readiness said not_ready: migrations pending")

        def check_approx():
            assert 0.1 + 0.2 == pytest.approx(0.3)

        def check_approx_fails():
            assert 0.1 + 0.25 == pytest.approx(0.3)

        def check_raises():
            with pytest.raises(ZeroDivisionError, match="division"):
                1 / 0

        @pytest.mark.skip(reason="decommissioned")
        def check_marked_skip():
            raise AssertionError

        @pytest.mark.skipif(sys.platform != "nonexistent-os", reason="only on nonexistent-os")
        def check_skipif_true():
            raise AssertionError

        @pytest.mark.skipif(False, reason="never")
        def check_skipif_false():
            pass

        @pytest.mark.skipif("sys.version_info < (3, 0)")
        def check_skipif_string():
            pass

        @pytest.mark.parametrize("n", [pytest.param(1, marks=pytest.mark.skip(reason="param skip")), 2])
        def check_param_marks(n):
            assert n == 2
        """,
    )
    _, report = checkdir.run_json()
    got = {r["name"]: (r["outcome"], r["message"].splitlines()[0] if r["message"] else "") for r in report["results"]}
    assert got == {
        "check_skip_inside": ("skipped", "replica not configured"),
        "check_fail_inside": ("failed", "readiness said not_ready: migrations pending"),
        "check_approx": ("passed", ""),
        "check_approx_fails": ("failed", got["check_approx_fails"][1]),
        "check_raises": ("passed", ""),
        "check_marked_skip": ("skipped", "decommissioned"),
        "check_skipif_true": ("skipped", "only on nonexistent-os"),
        "check_skipif_false": ("passed", ""),
        "check_skipif_string": ("passed", ""),
        "check_param_marks[1]": ("skipped", "param skip"),
        "check_param_marks[2]": ("passed", ""),
    }
    assert "0.3 ± 3.0e-07" in next(r for r in report["results"] if r["name"] == "check_approx_fails")["message"]


def test_conftest_asserts_are_rewritten_too(checkdir: CheckDir) -> None:
    checkdir.write(
        "checks/conftest.py",
        """
        from fraiseql_checks import fixture

        def assert_healthy(body):
            assert body["status"] == "healthy"

        @fixture
        def check_body():
            return assert_healthy
        """,
    )
    checkdir.write("checks/check_c.py", "def check_uses(check_body):\n    check_body({'status': 'degraded'})")
    _, report = checkdir.run_json()
    assert report["results"][0]["message"].startswith("assert 'degraded' == 'healthy'")


def test_plain_assert_mode_skips_rewriting(checkdir: CheckDir) -> None:
    checkdir.write("checks/check_p.py", "def check_p():\n    status = 404\n    assert status == 200")
    _, report = checkdir.run_json("--assert=plain")
    assert report["results"][0]["outcome"] == "failed"
    assert report["results"][0]["message"] == "AssertionError"


_NESTED = """
import marshal, sys
from fraiseql_checks.core._pytest_compat import explain_comparisons

namespace = {}
exec(marshal.loads(open(sys.argv[1], "rb").read()), namespace)
assert "_pytest.assertion" not in sys.modules
with explain_comparisons():
    with explain_comparisons():  # a run inside a run
        pass
    try:
        namespace["failing"]()
    except AssertionError as exc:
        print(str(exc))
"""


def test_a_run_inside_a_run_leaves_the_outer_runs_explanations(tmp_path: Path) -> None:
    """In a process that has not loaded pytest's assertion code (the rewritten code comes
    from a cache), a nested ``explain_comparisons`` that ended does not take the outer
    one's diffs away."""
    code = rewrite_module(b"def failing():\n    assert [1, 2, 3] == [1, 2, 4]\n", "nested.py")
    (tmp_path / "code").write_bytes(marshal.dumps(code))
    done = subprocess.run(
        [sys.executable, "-c", _NESTED, str(tmp_path / "code")], capture_output=True, text=True, timeout=60
    )
    assert "At index 2 diff: 3 != 4" in done.stdout, done.stdout + done.stderr


def test_a_run_ends_cleanly_while_a_checks_thread_is_still_importing_pytests_assertion_code(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A run stopped by ``-x`` may end while a check's thread is importing pytest's
    assertion helpers for its failing assert: the module is in ``sys.modules`` without
    its names yet. Leaving the run must not fail on it (it was an internal error, exit 3)."""
    import types

    from fraiseql_checks.core._pytest_compat import explain_comparisons

    loaded = types.ModuleType("_pytest.assertion.util")
    loaded._reprcompare = None  # type: ignore[attr-defined]  # loaded, no run's explainer in place
    monkeypatch.setitem(sys.modules, "_pytest.assertion.util", loaded)
    with explain_comparisons():
        assert loaded._reprcompare is not None  # type: ignore[attr-defined]
        partial = types.ModuleType("_pytest.assertion.util")  # as a thread's import under way leaves it
        monkeypatch.setitem(sys.modules, "_pytest.assertion.util", partial)
    assert not hasattr(partial, "_reprcompare")
