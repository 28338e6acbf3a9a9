"""``--junitxml FILE``: a JUnit XML report valid against ``junit-10.xsd``.

``junit-xml`` builds the suite and its test cases; the ``<testsuites>`` root is
assembled here, because the schema allows neither the ``disabled`` attribute the
package adds nor more than three decimals in a suite's time (its
``SUREFIRE_TIME`` pattern), and XML 1.0 forbids control characters that check
output can contain. ``junit-10.xsd`` also allows no ``<properties>`` inside a
``<testcase>``, so each check's trace id goes into the suite's properties
(``trace_id:<check id>``) and into the test case's ``system-out`` with its
recorded values.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from fraiseql_checks.config import Config, Parser, Setting, UsageError, as_str
from fraiseql_checks.hookspec import hookimpl
from fraiseql_checks.result import Outcome, Result

if TYPE_CHECKING:
    from decimal import Decimal

    from junit_xml import TestCase

    from fraiseql_checks.core.session import Session
    from fraiseql_checks.reports.terminal import TerminalReporter


@hookimpl
def fraiseql_addoption(parser: Parser) -> None:
    parser.addoption(
        "--junitxml",
        "--junit-xml",
        dest="junitxml",
        metavar="FILE",
        help="write a JUnit XML report to FILE",
        group="reports",
    )
    parser.addsetting(Setting("junit_suite_name", as_str, "fraiseql-checks", "name of the JUnit test suite"))


@hookimpl
def fraiseql_configure(config: Config) -> None:
    target = config.getoption("junitxml")
    if target and not config.getoption("collectonly"):
        path = prepare_report_path(config, target)
        config.pluginmanager.register(JUnitReport(path, config.get("junit_suite_name")), "junitxml-report")


@hookimpl
def fraiseql_unconfigure(config: Config) -> None:
    report = config.pluginmanager.get_plugin("junitxml-report")
    if report is not None:
        config.pluginmanager.unregister(report)


def prepare_report_path(config: Config, target: str) -> Path:
    """Resolve a report path and make sure it can be written before anything runs."""
    path = (config.invocation_dir / target).resolve()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8"):
            pass
    except OSError as exc:
        raise UsageError(f"cannot write the report {target}: {exc.strerror or exc}") from None
    return path


def write_report(path: Path, text: str) -> None:
    """Write a report whole or not at all (a temporary file renamed over it);
    ``UsageError`` in one line when the file cannot be written."""
    temp = path.with_name(f".{path.name}.{os.getpid()}")
    try:
        temp.write_text(text, encoding="utf-8")
        os.replace(temp, path)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None


_ILLEGAL_XML = "[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]"


#: JUnit's ``type`` of an error that no exception of a check gave.
_ERROR_TYPES = {"collect": "CollectError", "teardown": "TeardownError"}


def _seconds(value: float) -> Decimal:
    from decimal import Decimal  # imported here: most runs write no JUnit report

    return Decimal(str(round(value, 3)))


def own_time(result: Result) -> float:
    """The check's own time: its call and the teardown of its own fixtures, not the wait for
    a thread or for a fixture other checks share (the set-up only when the error is there)."""
    phases = result.phases
    seconds = phases.get("call", 0.0) + phases.get("teardown", 0.0)
    if result.outcome is Outcome.ERROR and result.when == "setup":
        seconds += phases.get("setup", 0.0)
    return seconds


def test_case(result: Result) -> TestCase:
    from junit_xml import TestCase

    relpath, _, name = result.id.partition("::")
    classname = relpath.removesuffix(".py").replace("/", ".")
    out = [f"trace_id={result.trace_id}"] if result.trace_id else []
    out += [f"{key}={value:g}" for key, value in result.values.items()]
    if result.stdout:
        out.append(result.stdout.rstrip("\n"))
    case = TestCase(
        name=name or relpath,
        classname=classname,
        elapsed_sec=_seconds(own_time(result)),
        stdout="\n".join(out) or None,
        stderr=result.stderr.rstrip("\n") or None,
    )
    first = (result.message.strip().splitlines() or [""])[0]
    if result.outcome is Outcome.FAILED:
        case.add_failure_info(
            message=first, output=result.longrepr or result.message, failure_type=result.exc_type or "AssertionError"
        )
    elif result.outcome is Outcome.ERROR:
        kind = (
            "TimeoutError"
            if result.timed_out
            else "KeyboardInterrupt"
            if result.extra.get("interrupted")
            else result.exc_type or _ERROR_TYPES.get(result.kind, "Error")
        )
        case.add_error_info(message=first, output=result.longrepr or result.message, error_type=kind)
    elif result.outcome is Outcome.SKIPPED:
        case.add_skipped_info(message=first)
    return case


class JUnitReport:
    """Collects results and writes the XML file when the session ends."""

    def __init__(self, path: Path, suite_name: str) -> None:
        self.path = path
        self.suite_name = suite_name
        self.results: list[Result] = []

    @hookimpl
    def fraiseql_report_result(self, result: Result) -> None:
        self.results.append(result)

    def xml(self, started: float, duration: float = 0.0) -> str:
        """The report; ``duration`` is the run's wall time, the suite's ``time``."""
        # Imported here: most runs write no JUnit report.
        import datetime
        import socket
        import xml.dom.minidom
        import xml.etree.ElementTree as ET

        from junit_xml import TestSuite

        cases = [test_case(r) for r in self.results]
        suite = TestSuite(
            self.suite_name,
            cases,
            hostname=socket.gethostname(),
            timestamp=datetime.datetime.fromtimestamp(started, datetime.UTC).isoformat(timespec="seconds"),
            properties={f"trace_id:{r.id}": r.trace_id for r in self.results if r.trace_id},
        )
        element = suite.build_xml_doc()
        element.attrib.pop("disabled", None)
        # Checks run side by side: the suite took the run's time, not the sum of its cases'.
        total = f"{_seconds(duration):.3f}"
        element.set("time", total)
        for case_element, case in zip(element.iter("testcase"), cases, strict=True):
            case_element.set("time", f"{case.elapsed_sec:.3f}")  # junit-xml leaves out a zero
        root = ET.Element("testsuites", {"name": self.suite_name, "time": total})
        for key in ("tests", "failures", "errors"):
            root.set(key, element.get(key, "0"))
        root.append(element)
        text = re.sub(_ILLEGAL_XML, "", ET.tostring(root, encoding="unicode"))
        return xml.dom.minidom.parseString(text).toprettyxml(indent="  ")

    @hookimpl
    def fraiseql_sessionfinish(self, session: Session, exitstatus: int) -> None:
        write_report(self.path, self.xml(session.started, session.summary.duration_s or session.duration))

    @hookimpl
    def fraiseql_terminal_summary(self, reporter: TerminalReporter, exitstatus: int) -> None:
        if reporter.verbosity >= 0:
            reporter.sep("-", f"generated JUnit XML file: {self.path}")
