"""``fraiseql-check slo``: every SLO's standing, as a table, JSON or JUnit, and a CI gate.

    fraiseql-check slo                               # the table
    fraiseql-check slo --report-json slo.json        # and the numbers behind it
    fraiseql-check slo --gate --junitxml slo.xml     # exit 1 if a budget is spent
    fraiseql-check slo --gate --min-budget 25% --max-burn-rate 2 --burn-window 6h

Check SLOs read the result store (``--store``, as watch mode writes it); request
SLOs query Prometheus. Without ``--gate`` the command reports and exits 0; with it,
it exits 1 when a selected SLO has less budget left than ``--min-budget`` (default
0: overspent), burns faster than ``--max-burn-rate`` over ``--burn-window``, or
could not be evaluated. An SLO with no data yet is reported ``unknown`` and does
not fail the gate unless ``--require-data``. Invalid definitions exit 4.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import fnmatch
import json
import sys
import time
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from fraiseql_checks.config import Config, UsageError, write_error
from fraiseql_checks.durations import format_duration

if TYPE_CHECKING:
    from fraiseql_checks.slo.compute import Status
    from fraiseql_checks.slo.model import SLO
    from fraiseql_checks.stores import SLITotals, Store

# The model and the computation are imported when the command runs: every run of
# fraiseql-check registers this plugin, few ask for ``slo``.


def _ratio_argument(value: str) -> Fraction:
    """``25%`` or ``0.25``; negative values allowed (``-10%``: up to 10% overspent passes)."""
    from fraiseql_checks.slo.model import exact

    text = value.strip()
    try:
        number = exact(text.rstrip("%").strip())
    except (ValueError, ArithmeticError):
        raise argparse.ArgumentTypeError(f"expected a ratio such as 0.25 or 25%, got {value!r}") from None
    return number / 100 if text.endswith("%") else number


def _burn_argument(value: str) -> Fraction:
    from fraiseql_checks.slo.model import exact

    try:
        number = exact(value.strip())
    except (ValueError, ArithmeticError):
        raise argparse.ArgumentTypeError(f"expected a burn rate such as 2 or 14.4, got {value!r}") from None
    if number <= 0:
        raise argparse.ArgumentTypeError(f"the burn rate must be above 0, got {value!r}")
    return number


def _time_argument(value: str) -> float:
    import datetime as dt

    expected = f"expected a time such as 2026-01-31T18:00:00Z or seconds since the epoch, got {value!r}"
    try:
        seconds = float(value)
    except ValueError:
        try:
            moment = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise argparse.ArgumentTypeError(expected) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        return moment.timestamp()
    # Within the years datetime can show (a calendar period needs them), not inf or nan.
    if not 0 <= seconds < 253402300800:
        raise argparse.ArgumentTypeError(expected)
    return seconds


def arguments(parser: argparse.ArgumentParser) -> None:
    from fraiseql_checks.slo.model import BURN_WINDOWS

    parser.add_argument("paths", nargs="*", metavar="PATH", help="where the checks are (default: the config's paths)")
    parser.add_argument(
        "--gate", action="store_true", help="exit 1 when a selected SLO breaks --min-budget or --max-burn-rate"
    )
    parser.add_argument(
        "--min-budget",
        type=_ratio_argument,
        default=Fraction(0),
        metavar="RATIO",
        help="with --gate: the least error budget that must remain, e.g. 25%% or 0.25 (default 0)",
    )
    parser.add_argument(
        "--max-burn-rate",
        type=_burn_argument,
        metavar="RATE",
        help="with --gate: the fastest burn allowed over --burn-window, e.g. 2",
    )
    parser.add_argument(
        "--burn-window",
        choices=BURN_WINDOWS,
        default="1h",
        help="the window --max-burn-rate is measured over (default 1h)",
    )
    parser.add_argument(
        "--slo",
        dest="slo_select",
        action="append",
        metavar="GLOB",
        help="only SLOs whose id (service-name), name or check id matches; may be repeated",
    )
    parser.add_argument(
        "--require-data", action="store_true", help="with --gate: an SLO with no data yet fails the gate too"
    )
    parser.add_argument(
        "--at",
        dest="slo_at",
        type=_time_argument,
        metavar="TIME",
        help="evaluate as of TIME (ISO 8601 such as 2026-01-31T18:00:00Z, or seconds since the epoch), not now",
    )


@dataclasses.dataclass(frozen=True)
class Verdict:
    """What the gate says about one SLO."""

    status: Status
    #: ``passed``, ``failed``, ``error`` or ``skipped`` (no data).
    outcome: str
    reasons: tuple[str, ...] = ()


def _percent(value: Fraction | float | None, digits: int = 2) -> str:
    if value is None:
        return "—"
    return f"{float(value) * 100:.{digits}f}%"


def _rate(value: Fraction | None) -> str:
    return "—" if value is None else f"{float(value):.2f}×"


def judge(status: Status, options: argparse.Namespace) -> Verdict:
    if status.error is not None:
        return Verdict(status, "error", (f"could not be evaluated: {status.error}",))
    if status.remaining is None:
        why = status.note or "no data over the period yet"
        if options.require_data or (status.note and options.require_targets):
            flag = "--require-data" if options.require_data else "--require-targets"
            return Verdict(status, "failed", (f"{why} ({flag})",))
        return Verdict(status, "skipped", (why,))
    reasons = []
    remaining, minimum = status.remaining, options.min_budget
    if remaining < minimum:
        spent = "is spent" if remaining <= 0 else "is below the minimum"
        reasons.append(
            f"error budget {spent}: {_percent(remaining)} left, at least {_percent(minimum)} required"
            f" (SLI {_percent(status.sli, 3)} against {status.slo.objective} over {status.slo.period})"
        )
    if options.max_burn_rate is not None:
        burn = status.burn_rate(options.burn_window)
        if burn is not None and burn > options.max_burn_rate:
            reasons.append(
                f"burning {_rate(burn)} over {options.burn_window}, faster than the {_rate(options.max_burn_rate)}"
                " allowed"
            )
    return Verdict(status, "failed" if reasons else "passed", tuple(reasons))


def _selected(slos: Sequence[SLO], patterns: Sequence[str] | None) -> list[SLO]:
    if not patterns:
        return list(slos)
    return [
        slo
        for slo in slos
        if any(
            fnmatch.fnmatchcase(candidate, pattern)
            for pattern in patterns
            for candidate in (slo.id, slo.name, slo.check_id or "")
        )
    ]


def _open_store(config: Config) -> Store | None:
    """The result store watch mode writes; ``None`` when that is a SQLite file not there
    yet (nothing was ever stored: every check SLO is unknown, and no file is created)."""
    from fraiseql_checks.stores import open_store
    from fraiseql_checks.stores.sqlite import SQLiteStore

    store = open_store(config, config.get("store"))
    if isinstance(store, SQLiteStore) and not store.path.exists():
        return None
    return store


async def _evaluate(config: Config, slos: Sequence[SLO], now: float) -> list[Status]:
    from fraiseql_checks.slo.compute import statuses
    from fraiseql_checks.slo.model import CheckSLI
    from fraiseql_checks.stores import StoreUnavailable
    from fraiseql_checks.targets.http import make_client
    from fraiseql_checks.targets.plugin import targets_of
    from fraiseql_checks.targets.prometheus import PrometheusClient

    store: Store | None = None
    if any(isinstance(slo.sli, CheckSLI) for slo in slos):
        store = _open_store(config)
    prom_url = targets_of(config).prometheus_url
    needs_prom = any(not isinstance(slo.sli, CheckSLI) for slo in slos)
    async with make_client(config) as http:
        prom = (
            PrometheusClient(http, prom_url, targets_of(config).prometheus_token) if prom_url and needs_prom else None
        )
        try:
            if store is None:
                found = await statuses(slos, now, _EmptyStore(), prom)
            else:
                try:
                    await store.open()
                except StoreUnavailable as exc:
                    raise UsageError(f"the result store {config.mask(store.url)} is unavailable: {exc}") from None
                found = await statuses(slos, now, store, prom)
        finally:
            if store is not None:
                await store.close()
    return found


class _EmptyStore:
    """Stands for a store that was never written: every total is zero."""

    url = ""

    async def sli_totals(
        self, check_ids: Sequence[str], windows: Sequence[tuple[float, float]]
    ) -> dict[str, list[SLITotals]]:
        return {}


def table(verdicts: Sequence[Verdict], gate: bool) -> list[str]:
    """The terminal table: one row per SLO."""
    header = ["SLO", "objective", "period", "SLI", "budget left", "time left", "fastest burn", "status"]
    rows = []
    for verdict in verdicts:
        status = verdict.status
        fastest = status.fastest_burn
        remaining_s = status.remaining_seconds
        time_left = "—" if remaining_s is None else ("-" if remaining_s < 0 else "") + format_duration(abs(remaining_s))
        state = status.state if not gate else verdict.outcome.upper()
        rows.append(
            [
                status.slo.id,
                str(status.slo.objective),
                status.slo.period.label,
                _percent(status.sli, 3),
                _percent(status.remaining, 1),
                time_left,
                "—" if fastest is None else f"{_rate(fastest[1])} ({fastest[0]})",
                state,
            ]
        )
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(header, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * width for width in widths))
    lines.extend("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows)
    for verdict in verdicts:
        if verdict.status.error is not None or verdict.status.note or (gate and verdict.outcome == "failed"):
            for reason in verdict.reasons:
                lines.append(f"{verdict.status.slo.id}: {reason}")
    return lines


def json_document(verdicts: Sequence[Verdict], options: argparse.Namespace, now: float) -> dict[str, Any]:
    counts = {state: 0 for state in ("ok", "exhausted", "unknown", "error")}
    for verdict in verdicts:
        counts[verdict.status.state] += 1
    gate: dict[str, Any] | None = None
    if options.gate:
        gate = {
            "passed": not any(v.outcome in ("failed", "error") for v in verdicts),
            "min_budget": float(options.min_budget),
            "max_burn_rate": None if options.max_burn_rate is None else float(options.max_burn_rate),
            "burn_window": options.burn_window,
            "require_data": bool(options.require_data),
        }
    slos = []
    for verdict in verdicts:
        entry = verdict.status.to_json()
        if options.gate:
            entry["gate"] = {"outcome": verdict.outcome, "reasons": list(verdict.reasons)}
        slos.append(entry)
    return {"generated_at": now, "summary": {"total": len(verdicts), **counts, "gate": gate}, "slos": slos}


def junit_xml(verdicts: Sequence[Verdict], suite_name: str, now: float) -> str:
    """One test case per SLO (named by its id, classed by its service)."""
    from fraiseql_checks.reports.junitxml import JUnitReport
    from fraiseql_checks.result import Outcome, Result

    report = JUnitReport(Path(), suite_name)
    for verdict in verdicts:
        status = verdict.status
        lines = [
            f"objective={status.slo.objective}",
            f"period={status.slo.period}",
            f"sli={_percent(status.sli, 4)}",
            f"budget_remaining={_percent(status.remaining, 2)}",
        ]
        lines += [f"burn_rate_{w}={_rate(r)}" for w, r in status.burn_rates.items()]
        report.results.append(
            Result(
                id=f"slo/{status.slo.service}::{status.slo.name}",
                name=status.slo.name,
                outcome=Outcome(verdict.outcome),
                message="; ".join(verdict.reasons) or "",
                stdout="\n".join(lines),
            )
        )
    return report.xml(now)


def run(config: Config) -> int:
    from fraiseql_checks.core.session import ExitCode
    from fraiseql_checks.generate import GenerateError
    from fraiseql_checks.reports.junitxml import prepare_report_path, write_report
    from fraiseql_checks.slo.model import SLOError
    from fraiseql_checks.slo.plugin import for_profile, load_slos

    options = config.option
    try:
        slos = load_slos(config)
    except SLOError as exc:
        write_error(config.mask(str(exc)))
        return ExitCode.USAGE_ERROR
    except GenerateError as exc:
        for line in str(exc).splitlines():
            write_error(config.mask(line))
        return exc.exitcode
    selected = _selected(for_profile(slos, config), options.slo_select)
    out: IO[str] = sys.stdout
    if not selected:
        what = "no SLO matches --slo" if options.slo_select else "no SLOs: declare @check(slo=...) or write slos.yaml"
        out.write(f"{what}\n")
        return ExitCode.NO_CHECKS
    now = options.slo_at if options.slo_at is not None else time.time()
    found = asyncio.run(_evaluate(config, selected, now))
    verdicts = [judge(status, options) for status in found]
    for line in table(verdicts, options.gate):
        out.write(config.mask(line) + "\n")
    if options.report_json:
        path = prepare_report_path(config, options.report_json)
        document = json_document(verdicts, options, now)
        write_report(path, config.mask(json.dumps(document, indent=2, sort_keys=False)) + "\n")
    if options.junitxml:
        path = prepare_report_path(config, options.junitxml)
        write_report(path, config.mask(junit_xml(verdicts, config.get("junit_suite_name"), now)))
    if not options.gate:
        return ExitCode.OK
    failed = [v for v in verdicts if v.outcome in ("failed", "error")]
    out.write(
        f"SLO gate: {'FAILED' if failed else 'passed'}"
        f" ({len(failed)} of {len(verdicts)} SLOs {'fail' if len(failed) != 1 else 'fails'} it)\n"
    )
    return ExitCode.FAILED if failed else ExitCode.OK
