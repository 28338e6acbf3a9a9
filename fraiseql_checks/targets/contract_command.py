"""``fraiseql-check contract``: the metrics contract of someone else's dashboards and rule files.

    fraiseql-check contract --dashboards vendor/grafana --rules monitoring/rules
    fraiseql-check contract --dashboards a/ --dashboards b.json --report-json contract.json

Reads every Grafana dashboard (``*.json``) and Prometheus rule file (``*.yml``,
``*.yaml``, PrometheusRule manifests too) under the given files and folders, parses
their PromQL as the metrics contract check does (``contract.py``), and looks every
series up on the configured target: FraiseQL's ``/metrics`` (``FRAISEQL_URL``, and for
v2 ``FRAISEQL_METRICS_TOKEN``) and/or Prometheus (``PROMETHEUS_URL``). One line per
series the target does not expose, with where it is queried.

Exit codes: 0 nothing missing; 1 a series is missing, a file cannot be read or the
target cannot be asked; 4 bad usage (no folder given, a path that does not exist, no
target configured); 5 the files query no series at all.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, Any

from fraiseql_checks.config import Config, UsageError, write_error
from fraiseql_checks.targets.contract import (
    RULE_SUFFIXES,
    ContractError,
    Reference,
    Verdict,
    by_name,
    dashboard_references,
    rule_references,
)


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dashboards",
        dest="contract_dashboards",
        action="append",
        default=[],
        metavar="DIR",
        help="a folder (read recursively) or a file of Grafana dashboard JSON; may be given several times",
    )
    parser.add_argument(
        "--rules",
        dest="contract_rules",
        action="append",
        default=[],
        metavar="DIR",
        help="a folder (read recursively) or a file of Prometheus rule files; may be given several times",
    )


@dataclasses.dataclass(frozen=True)
class Source:
    """A file to read, the way to read it, and the name to report it by (as the user wrote the path)."""

    path: Path
    shown: str
    kind: str  # "dashboard" or "rules"


def sources(base: Path, entries: Sequence[str], kind: str) -> list[Source]:
    """The files under each entry (a file, or a folder read recursively).

    ``UsageError`` for a path that does not exist."""
    suffixes = (".json",) if kind == "dashboard" else RULE_SUFFIXES
    option = "--dashboards" if kind == "dashboard" else "--rules"
    found: list[Source] = []
    for entry in entries:
        path = base / entry
        if path.is_file():
            found.append(Source(path, entry, kind))
        elif path.is_dir():
            for inner in sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in suffixes):
                found.append(Source(inner, (Path(entry) / inner.relative_to(path)).as_posix(), kind))
        else:
            raise UsageError(f"{option} {entry}: no such file or folder")
    return found


def read(files: Iterable[Source]) -> tuple[list[Reference], list[str]]:
    """Every reference in the files, and one line per file that cannot be read or holds invalid PromQL."""
    refs: list[Reference] = []
    problems: list[str] = []
    for source in files:
        reader = dashboard_references if source.kind == "dashboard" else rule_references
        try:
            refs += reader(source.path, source.shown)
        except ContractError as exc:
            problems.append(str(exc))
    return refs, problems


def _check_target(config: Config) -> None:
    """``UsageError`` when neither a FraiseQL ``/metrics`` nor Prometheus can be asked (as the check would skip)."""
    from fraiseql_checks.targets.plugin import targets_of

    targets = targets_of(config)
    target = targets.fraiseql
    if targets.prometheus_url is not None:
        return
    if target is None:
        raise UsageError("no target to compare with: set FRAISEQL_URL (or `fraiseql.url`) and/or PROMETHEUS_URL")
    if target.profile.metrics_need_token and not target.metrics_token:
        raise UsageError(
            f"{target.url}{target.metrics_path} needs a token: set FRAISEQL_METRICS_TOKEN "
            "(or `fraiseql.metrics_token`), or PROMETHEUS_URL"
        )


async def _verify(config: Config, refs: list[Reference]) -> Verdict:
    from fraiseql_checks.targets.contract import verify
    from fraiseql_checks.targets.http import make_client

    async with make_client(config) as http:
        return await verify(config, http, refs)


def lines(verdict: Verdict, refs: Sequence[Reference], files: Sequence[Source]) -> list[str]:
    """What the command prints: a line per missing series, then what it compared."""
    out = [f"{name}  ({'; '.join(places)})" for name, places in sorted(by_name(verdict.missing).items())]
    unchecked = sorted({ref.name for ref in verdict.unchecked})
    if unchecked:
        out.append(f"not checked (only Prometheus can confirm them: set PROMETHEUS_URL): {', '.join(unchecked)}")
    dashboards = sum(1 for f in files if f.kind == "dashboard")
    rule_files = len(files) - dashboards
    read_from = f"{_count(dashboards, 'dashboard')} and {_count(rule_files, 'rule file')}"
    missing = len({ref.name for ref in verdict.missing})
    referenced = len({ref.name for ref in refs})
    where = " and ".join(verdict.sources)
    if missing:
        out.append(f"{missing} of {referenced} series queried by {read_from} do not exist on {where}")
    else:
        checked = len({ref.name for ref in verdict.checked})
        out.append(f"all {checked} series checked of the {referenced} queried by {read_from} exist on {where}")
    return out


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def document(
    verdict: Verdict, refs: Sequence[Reference], problems: Sequence[str], error: str | None, exitcode: int
) -> dict[str, Any]:
    """The ``--report-json`` document: what was compared with what, and what is missing where."""

    def listing(found: Iterable[Reference]) -> list[dict[str, Any]]:
        return [{"series": name, "used_in": places} for name, places in sorted(by_name(found).items())]

    return {
        "sources": verdict.sources,
        "referenced": sorted({ref.name for ref in refs}),
        "missing": listing(verdict.missing),
        "unchecked": listing(verdict.unchecked),
        "unreadable": list(problems),
        "error": error,
        "exitcode": exitcode,
    }


def run(config: Config) -> int:
    from fraiseql_checks.core.session import ExitCode
    from fraiseql_checks.errors import TargetError
    from fraiseql_checks.reports.junitxml import prepare_report_path, write_report

    options = config.option
    if not options.contract_dashboards and not options.contract_rules:
        raise UsageError("give the files to check: --dashboards DIR and/or --rules DIR")
    base = config.invocation_dir
    files = [*sources(base, options.contract_dashboards, "dashboard"), *sources(base, options.contract_rules, "rules")]
    _check_target(config)
    report = prepare_report_path(config, options.report_json) if options.report_json else None
    refs, problems = read(files)
    out: IO[str] = sys.stdout
    for problem in problems:
        write_error(problem, config.mask)
    if not refs and not problems:
        out.write(f"no series queried in {_count(len(files), 'file')}: nothing to check\n")
        return ExitCode.NO_CHECKS
    error: str | None = None
    try:
        verdict = asyncio.run(_verify(config, refs))
    except TargetError as exc:
        error = str(exc)
        write_error(error, config.mask)
        verdict, code = Verdict([], [], [], []), ExitCode.FAILED
    else:
        for line in lines(verdict, refs, files):
            out.write(config.mask(line) + "\n")
        code = ExitCode.FAILED if verdict.missing or problems else ExitCode.OK
    if report is not None:
        text = json.dumps(document(verdict, refs, problems, error, code), indent=2)
        write_report(report, config.mask(text) + "\n")
    return code
