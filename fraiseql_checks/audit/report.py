"""``fraiseql-check audit report --since 30d -o report.html``: run the audit checks, write the evidence.

The command collects checks as a normal run does (the paths given, else ``paths``
of the config), keeps those that use the ``audit`` fixture, runs them with the
period set to ``--since`` and writes what they found and the SQL behind it, as
HTML, JSON or CSV after the output file's extension. The terminal shows the run
as usual; the exit code is the run's (0 all passed, 1 a check failed, ...).
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from fraiseql_checks.audit.evidence import FORMATS, WRITERS, evidence_document
from fraiseql_checks.audit.plugin import WINDOW_KEY, audit_settings
from fraiseql_checks.checks import Check
from fraiseql_checks.commands import RUN_OPTIONS, Command, Commands, Subjects, fixed
from fraiseql_checks.config import Config, UsageError, as_duration, write_error
from fraiseql_checks.core.fixtures import FixtureLookupError
from fraiseql_checks.core.session import ExitCode, Session
from fraiseql_checks.hookspec import hookimpl
from fraiseql_checks.reports.junitxml import write_report
from fraiseql_checks.targets.plugin import targets_of

DEFAULT_SINCE = "24h"


ACTIONS = {"report": "run the audit checks and write their evidence: audit report --since 30d -o report.html"}


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", nargs="?", choices=sorted(ACTIONS), help="what to do (see the list below)")
    parser.add_argument(
        "paths", nargs="*", default=[], metavar="PATH", help="where the checks are (default: the config's paths)"
    )
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
        metavar="FILE",
        help="where to write the evidence: .html, .json or .csv (required)",
    )
    parser.add_argument(
        "--allow-empty",
        dest="audit_allow_empty",
        action="store_true",
        help="write the evidence even when no check ran (all skipped, none collected), marked as empty",
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
    if not config.getoption("audit_output"):
        raise UsageError("audit report: -o FILE is required: where to write the evidence (.html, .json or .csv)")
    path = config.invocation_dir / config.getoption("audit_output")
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise UsageError(f"-o {config.getoption('audit_output')}: the file must end in .html, .json or .csv")
    if not path.parent.is_dir():
        raise UsageError(f"-o {config.getoption('audit_output')}: folder {path.parent} does not exist")
    return path, kind


def _run(config: Config) -> int:
    import datetime as dt  # imported by this command, not at every start

    since = str(config.getoption("audit_since"))
    try:
        seconds = as_duration(since)
    except ValueError as exc:
        raise UsageError(f"--since: {exc}") from None
    path, kind = _output(config)
    config.stash[WINDOW_KEY] = seconds
    config.pluginmanager.register(AuditSelection(), "audit-report-selection")
    session = Session(config)
    session.keep_results = True  # the evidence is written from them
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
    if document["empty"] and not config.getoption("audit_allow_empty"):
        write_error(f"no audit evidence written: {_why_empty(session)}; --allow-empty writes it anyway", config.mask)
        return int(status) or ExitCode.FAILED
    write_report(path, WRITERS[kind](document))
    empty = " (EMPTY: no check ran)" if document["empty"] else ""
    print(f"wrote {kind.upper()} audit evidence of {len(document['checks'])} checks{empty} to {path}")
    return int(status)


def _why_empty(session: Session) -> str:
    """Why no check ran, and what to do: the most common skip reason, which says how to fix it."""
    if not session.results:
        return "no audit check was collected (an audit check asks for the `audit` fixture)"
    reasons = Counter(_first_line(result.message) for result in session.results)
    reason, _ = reasons.most_common(1)[0]
    count = len(session.results)
    return f"{'the' if count == 1 else f'all {count}'} audit check{'s' if count != 1 else ''} skipped ({reason})"


def _first_line(text: str) -> str:
    return (text.strip().splitlines() or ["no reason given"])[0]


@hookimpl
def fraiseql_add_commands(commands: Commands) -> None:
    commands.add(
        Command(
            "audit",
            "audit compliance: `audit report --since 30d -o report.html`",
            _arguments,
            _run,
            options=RUN_OPTIONS,
            subjects=Subjects("action", "actions", fixed(ACTIONS)),
        )
    )
