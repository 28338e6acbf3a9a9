"""The JSON report's contract and the JUnit XML report, validated against junit-10.xsd."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import junitparser
import pytest
import xmlschema

from tests.support import validators
from tests.support.checkdir import CheckDir
from tests.support.services import require

MIXED = """
import asyncio, time
import pytest
from fraiseql_checks import check, record

@check(severity="critical", labels={"team": "db"})
def check_passes():
    record("latency_seconds", 0.25)

def check_fails():
    status = 404
    assert status == 200

def check_errors():
    {}["missing"]

@pytest.mark.skip(reason="maintenance <tonight> & tomorrow")
def check_skipped():
    pass

@check(timeout="0.3s")
async def check_times_out():
    await asyncio.sleep(60)

def check_secret():
    raise ConnectionError("postgresql://app:s3cr3t-pass@db.internal/app refused \\x1b[31m")
"""


@pytest.fixture
def mixed(checkdir: CheckDir) -> CheckDir:
    checkdir.write("checks/check_mixed.py", MIXED)
    checkdir.write("checks/check_broken.py", "import nope")
    return checkdir


def test_json_report_follows_the_contract(mixed: CheckDir) -> None:
    result, report = mixed.run_json()
    assert result.ret == 2  # a file did not collect
    summary = report["summary"]
    assert {k: summary[k] for k in ("total", "passed", "failed", "error", "skipped")} == {
        "total": 7,
        "passed": 1,
        "failed": 1,
        "error": 4,
        "skipped": 1,
    }
    assert summary["duration_s"] > 0
    contract = {"id", "name", "outcome", "message", "duration_s", "timed_out", "severity", "labels", "trace_id"}
    for item in report["results"]:
        assert contract <= set(item), item
    by_id = {r["id"]: r for r in report["results"]}
    passed = by_id["checks/check_mixed.py::check_passes"]
    assert passed["outcome"] == "passed" and passed["message"] == ""
    assert passed["severity"] == "critical" and passed["labels"] == {"team": "db"}
    assert passed["values"] == {"latency_seconds": 0.25}
    assert len(passed["trace_id"]) == 32 and int(passed["trace_id"], 16) != 0
    failed = by_id["checks/check_mixed.py::check_fails"]
    assert failed["outcome"] == "failed" and failed["message"].startswith("assert 404 == 200")
    assert failed["severity"] == "warning"  # the configured default
    assert by_id["checks/check_mixed.py::check_errors"]["message"] == "KeyError: 'missing'"
    timed = by_id["checks/check_mixed.py::check_times_out"]
    assert timed["timed_out"] is True and timed["outcome"] == "error"
    assert by_id["checks/check_mixed.py::check_skipped"]["message"] == "maintenance <tonight> & tomorrow"
    assert by_id["checks/check_broken.py"]["outcome"] == "error"
    assert len({r["trace_id"] for r in report["results"] if r["trace_id"]}) == 6


def test_secrets_are_masked_in_every_report(mixed: CheckDir) -> None:
    xml_path = mixed.path / "out.xml"
    result, report = mixed.run_json("--junitxml", str(xml_path))
    secret = report and next(r for r in report["results"] if r["name"] == "check_secret")
    assert "s3cr3t-pass" not in secret["message"] and "app:***@db.internal" in secret["message"]
    for text in (result.stdout, result.stderr, xml_path.read_text(), (mixed.path / "report.json").read_text()):
        assert "s3cr3t-pass" not in text


def test_junit_xml_is_valid_against_junit_10_xsd(mixed: CheckDir) -> None:
    xsd = validators.junit_xsd()
    require(xsd.exists(), "junit-10.xsd was not fetched (run tests/support/validators.py)")
    xml_path = mixed.path / "out.xml"
    result = mixed.run("--junitxml", str(xml_path))
    assert result.ret == 2
    schema = xmlschema.XMLSchema(str(xsd))
    schema.validate(str(xml_path))  # raises with the exact violation

    suites = junitparser.JUnitXml.fromfile(str(xml_path))
    suite = next(iter(suites))
    assert (suite.tests, suite.failures, suite.errors, suite.skipped) == (7, 1, 4, 1)
    cases = {case.name: case for case in suite}
    assert cases["check_passes"].classname == "checks.check_mixed"
    assert cases["check_passes"].is_passed
    failure = cases["check_fails"].result[0]
    assert isinstance(failure, junitparser.Failure)
    assert failure.message == "assert 404 == 200"
    assert "assert status == 200" in failure.text
    assert isinstance(cases["check_times_out"].result[0], junitparser.Error)
    assert cases["check_skipped"].is_skipped
    assert isinstance(cases["checks/check_broken.py"].result[0], junitparser.Error)

    root = ET.parse(xml_path).getroot()
    properties = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert len(properties["trace_id:checks/check_mixed.py::check_passes"]) == 32
    out = cases["check_passes"].system_out
    assert "trace_id=" in out and "latency_seconds=0.25" in out


def test_report_path_that_cannot_be_written_is_a_usage_error(checkdir: CheckDir) -> None:
    checkdir.write("checks/check_ok.py", "def check_ok(): pass")
    checkdir.write("blocker", "a file where a folder should be")
    result = checkdir.run("--junitxml", "blocker/out.xml")
    assert result.ret == 4
    result.stderr_lines(["ERROR: cannot write the report blocker/out.xml: *"])


def test_a_conftest_hook_adds_a_field_to_every_result(checkdir: CheckDir) -> None:
    checkdir.write(
        "checks/conftest.py",
        """
        def fraiseql_result(result, check):
            result.extra["team"] = "payments"
        """,
    )
    checkdir.write("checks/check_a.py", "def check_a(): pass\ndef check_b(): assert False")
    _, report = checkdir.run_json()
    assert [r["team"] for r in report["results"]] == ["payments", "payments"]


def test_what_a_check_prints_is_captured_with_its_result_and_masked(checkdir: CheckDir) -> None:
    checkdir.write(
        "checks/check_print.py",
        """
        import sys

        def check_prints_and_fails():
            print("connecting to postgresql://app:pr1nted-secret@db/app")
            print("warning on stderr", file=sys.stderr)
            assert False

        def check_prints_and_passes():
            print("all good")
        """,
    )
    xml_path = checkdir.path / "out.xml"
    result, report = checkdir.run_json("--junitxml", str(xml_path))
    by_name = {r["name"]: r for r in report["results"]}
    failed = by_name["check_prints_and_fails"]
    assert failed["stdout"] == "connecting to postgresql://app:***@db/app\n"
    assert failed["stderr"] == "warning on stderr\n"
    assert by_name["check_prints_and_passes"]["stdout"] == "all good\n"
    result.fnmatch_lines(
        ["*- Captured stdout -*", "connecting to postgresql://app:***@db/app", "*- Captured stderr -*"]
    )
    assert "all good" not in result.stdout  # a passing check's output stays in the reports
    for text in (result.stdout, result.stderr, xml_path.read_text()):
        assert "pr1nted-secret" not in text
    assert "warning on stderr" in xml_path.read_text()

    uncaptured = checkdir.run("-s")
    assert "all good" in uncaptured.stdout
    assert "connecting to postgresql://app:***@db/app" in uncaptured.stdout
    assert "pr1nted-secret" not in uncaptured.stdout


SHARED_WAIT = """
import asyncio, time
import pytest
from fraiseql_checks import fixture

@fixture(scope="session")
def slow_pool():
    time.sleep(1.0)
    return "pool"

@fixture(scope="session")
def absent_target():
    time.sleep(0.6)
    pytest.skip("target not configured")

@fixture
def broken():
    raise RuntimeError("cannot connect")

@pytest.mark.parametrize("n", range(3))
def check_uses_pool(slow_pool, n):
    pass

@pytest.mark.parametrize("n", range(2))
def check_skips_in_a_fixture(absent_target, n):
    pass

@pytest.mark.parametrize("n", range(8))
async def check_sleeps(n):
    await asyncio.sleep(0.4)

def check_key_error():
    {}["missing"]

def check_fixture_error(broken):
    pass
"""


def test_junit_times_are_the_run_and_the_checks_own(checkdir: CheckDir) -> None:
    checkdir.write("checks/check_times.py", SHARED_WAIT)
    checkdir.write("checks/sub/check_broken.py", "import nope")
    xml_path = checkdir.path / "out.xml"
    result, report = checkdir.run_json("--junitxml", str(xml_path))
    assert result.ret == 2
    xsd = validators.junit_xsd()
    require(xsd.exists(), "junit-10.xsd was not fetched (run tests/support/validators.py)")
    xmlschema.XMLSchema(str(xsd)).validate(str(xml_path))

    root = ET.parse(xml_path).getroot()
    (suite,) = root.iter("testsuite")
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    times = {name: float(case.get("time", "nan")) for name, case in cases.items()}
    # the suite took the run's wall time (the JSON report's), not the sum of its cases: eight
    # checks sleep 0.4 s each side by side, 3.2 s in all, beside a set-up of 1 s
    assert float(suite.get("time")) == round(report["summary"]["duration_s"], 3)
    sleeps = [times[f"check_sleeps[{n}]"] for n in range(8)]
    assert min(sleeps) >= 0.4
    assert float(suite.get("time")) < sum(sleeps)
    # a check waiting for a shared fixture's 1 s set-up: the wait is not its time
    for n in range(3):
        assert times[f"check_uses_pool[{n}]"] < 0.5
    assert times["check_skips_in_a_fixture[0]"] == times["check_skips_in_a_fixture[1]"] == 0.0
    # errors carry the exception's class
    assert cases["check_key_error"].find("error").get("type") == "KeyError"
    assert cases["check_fixture_error"].find("error").get("type") == "RuntimeError"
    # a file that did not collect is a case like the others
    broken = cases["checks/sub/check_broken.py"]
    assert broken.get("classname") == "checks.sub.check_broken"
    assert broken.get("time") == "0.000"
    assert broken.find("error").get("type") == "ModuleNotFoundError"
