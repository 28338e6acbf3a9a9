"""``--report-json FILE``: the JSON report of PRODUCT.md's contract."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fraiseql_checks._version import __version__
from fraiseql_checks.config import Config, Parser
from fraiseql_checks.hookspec import hookimpl
from fraiseql_checks.reports.junitxml import prepare_report_path, write_report
from fraiseql_checks.result import Result

if TYPE_CHECKING:
    from fraiseql_checks.core.session import Session
    from fraiseql_checks.reports.terminal import TerminalReporter


@hookimpl
def fraiseql_addoption(parser: Parser) -> None:
    parser.addoption(
        "--report-json", dest="report_json", metavar="FILE", help="write a JSON report to FILE", group="reports"
    )


@hookimpl
def fraiseql_configure(config: Config) -> None:
    target = config.getoption("report_json")
    if target and not config.getoption("collectonly"):
        config.pluginmanager.register(JSONReport(prepare_report_path(config, target)), "json-report")


@hookimpl
def fraiseql_unconfigure(config: Config) -> None:
    report = config.pluginmanager.get_plugin("json-report")
    if report is not None:
        config.pluginmanager.unregister(report)


class JSONReport:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.results: list[Result] = []

    @hookimpl
    def fraiseql_report_result(self, result: Result) -> None:
        self.results.append(result)

    def document(self, session: Session, exitstatus: int) -> dict[str, Any]:
        return {
            "summary": session.summary.to_json(),
            "results": [r.to_json() for r in self.results],
            "exitcode": exitstatus,
            "created": session.started,
            "version": __version__,
        }

    @hookimpl
    def fraiseql_sessionfinish(self, session: Session, exitstatus: int) -> None:
        write_report(self.path, json.dumps(self.document(session, exitstatus), indent=2) + "\n")

    @hookimpl
    def fraiseql_terminal_summary(self, reporter: TerminalReporter, exitstatus: int) -> None:
        if reporter.verbosity >= 0:
            reporter.sep("-", f"generated JSON report: {self.path}")
