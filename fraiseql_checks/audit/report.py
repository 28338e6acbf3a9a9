"""``fraiseql-check audit report --since 30d -o report.html``: run the audit checks, write the evidence.

The command collects checks as a normal run does (the paths given, else ``paths``
of the config), keeps those that use the ``audit`` fixture, runs them with the
period set to ``--since`` and writes what they found and the SQL behind it, as
HTML, JSON or CSV after the output file's extension. The terminal shows the run
as usual; the exit code is the run's (0 all passed, 1 a check failed, ...).
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from fraiseql_checks.audit.evidence import FORMATS, WRITERS, evidence_document
from fraiseql_checks.audit.plugin import WINDOW_KEY, audit_settings
from fraiseql_checks.checks import Check
from fraiseql_checks.commands import Command, Commands
from fraiseql_checks.config import Config, UsageError, as_duration
from fraiseql_checks.core.fixtures import FixtureLookupError
from fraiseql_checks.core.session import Session
from fraiseql_checks.hookspec import hookimpl
from fraiseql_checks.reports.junitxml import write_report
from fraiseql_checks.targets.plugin import targets_of

DEFAULT_SINCE = "24h"


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["report"], help="report: run the audit checks and write their evidence")
    parser.add_argument("paths", nargs="*", metavar="PATH", help="where the checks are (default: the config's paths)")
    parser.add_argument(
        "--since",
        dest="audit_since",
        default=DEFAULT_SINCE,
        metavar="DURATION",
        help=f"the period the checks evaluate, up to now, e.g. 30d (default {DEFAULT_SINCE})",
    )
    parser.add_argument(
        "-o",
        "--output",
        dest="audit_output",
        required=True,
        metavar="FILE",
        help="where to write the evidence: .html, .json or .csv",
    )


def uses_audit(session: Session, check: Check) -> bool:
    """Whether the check reads the audit tables (asks for ``audit``, or a fixture that does)."""
    if "audit" in check.argnames:
        return True
    try:
        closure = session.fixtures.closure(check.path, check.argnames)
    except FixtureLookupError:
        return False
    return any(definition.name == "audit" for definition in closure.order)


class AuditSelection:
    """Keeps only the audit checks of the collected ones."""

    @hookimpl(trylast=True)
    def fraiseql_collection_modifyitems(self, session: Session, config: Config, checks: list[Check]) -> None:
        dropped = [check for check in checks if not uses_audit(session, check)]
        if dropped:
            checks[:] = [check for check in checks if check not in dropped]
            config.hook.fraiseql_deselected(checks=dropped)


def _output(config: Config) -> tuple[Path, str]:
    path = config.invocation_dir / config.getoption("audit_output")
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise UsageError(f"-o {config.getoption('audit_output')}: the file must end in .html, .json or .csv")
    if not path.parent.is_dir():
        raise UsageError(f"-o {config.getoption('audit_output')}: folder {path.parent} does not exist")
    return path, kind


def _run(config: Config) -> int:
    since = str(config.getoption("audit_since"))
    try:
        seconds = as_duration(since)
    except ValueError as exc:
        raise UsageError(f"--since: {exc}") from None
    path, kind = _output(config)
    config.stash[WINDOW_KEY] = seconds
    config.pluginmanager.register(AuditSelection(), "audit-report-selection")
    session = Session(config)
    generated_at = dt.datetime.now(dt.UTC)
    status = session.main()
    by_id = {check.id: check for check in session.checks}
    settings = audit_settings(config)
    targets = targets_of(config)
    document = evidence_document(
        ((result, by_id.get(result.id)) for result in session.results),
        generated_at=generated_at,
        since=since,
        seconds=seconds,
        profile=targets.profile.name,
        database=config.mask(targets.database_dsn) if targets.database_dsn else None,
        scope={
            "role": settings.get("role"),
            "tenant": settings.get("tenant"),
            "tenant_setting": settings["tenant_setting"],
        },
        mask=config.mask,
    )
    write_report(path, WRITERS[kind](document))
    print(f"wrote {kind.upper()} audit evidence of {len(document['checks'])} checks to {path}")
    return int(status)


@hookimpl
def fraiseql_add_commands(commands: Commands) -> None:
    commands.add(Command("audit", "audit compliance: `audit report --since 30d -o report.html`", _arguments, _run))
