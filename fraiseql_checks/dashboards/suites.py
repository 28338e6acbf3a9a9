"""One dashboard per check suite, built from the checks' own metadata.

A suite is the folder a check lives in (or its ``suite`` label). Its dashboard
shows, from the metrics ``fraiseql-check --watch`` exports: one coloured stat per
check (``fraiseql_check_up``), run durations and failures, the values checks
record with the thresholds they assert (their ``@check(panel=...)`` hints), and
the SLO panels of checks that declare an ``slo``. Every panel links to its
check's runbook.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from fraiseql_checks import metrics as m
from fraiseql_checks.dashboards.model import (
    GREEN,
    RED,
    Dashboard,
    Link,
    Panel,
    Row,
    Target,
    all_dashboards_link,
    datasource_variable,
    label_variables,
    slug,
    stable_uid,
    thresholds_for,
)
from fraiseql_checks.dashboards.queries import (
    RATE,
    SLO_BUDGET,
    SLO_BURN,
    SLO_OBJECTIVE,
    SLO_SLI,
    Re,
    Scope,
    select,
)
from fraiseql_checks.runbooks import runbook_link
from fraiseql_checks.slo.model import (
    BURN_WINDOWS,
    PAGE,
    PERIOD_WINDOW,
    REFERENCE_PERIOD_S,
    burn_thresholds,
    decimal_text,
)

if TYPE_CHECKING:
    from fraiseql_checks.checks import Check

SCOPE = Scope()
HINT_KEYS = ("value", "title", "unit", "thresholds", "bad", "min", "max")
#: Burn rates worth a colour, as the SLO rules alert on them for 30 days: 1 (the slowest
#: ticket; it spends the budget exactly over the period), then 6 and 14.4 (the pages).
BURN_THRESHOLDS = burn_thresholds()
STATUS_MAPPINGS = {"1": ("passing", GREEN), "0": ("failing", RED)}


class PanelHintError(ValueError):
    """A check's ``panel=`` hint is malformed; the message names the check and the key."""


@dataclasses.dataclass(frozen=True)
class PanelHint:
    """What ``@check(panel={...})`` asks of the check's value panel."""

    value: str | None = None
    title: str | None = None
    unit: str = ""
    thresholds: tuple[float, ...] = ()
    bad: str = "above"
    min: float | None = None
    max: float | None = None


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{what} must be a number, got {value!r}")
    return float(value)


def parse_hint(raw: Mapping[str, Any]) -> PanelHint | None:
    """The hint of a ``panel=`` mapping (``None`` when empty); ``ValueError`` says what is wrong."""
    if not raw:
        return None
    unknown = sorted(set(raw) - set(HINT_KEYS))
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r} (known: {', '.join(HINT_KEYS)})")
    for key in ("value", "title", "unit"):
        if key in raw and not isinstance(raw[key], str):
            raise ValueError(f"{key!r} must be a string, got {raw[key]!r}")
    limits = raw.get("thresholds", ())
    if not isinstance(limits, list | tuple):
        limits = (limits,)
    bad = raw.get("bad", "above")
    if bad not in ("above", "below"):
        raise ValueError(f"'bad' must be 'above' or 'below', got {bad!r}")
    return PanelHint(
        value=raw.get("value"),
        title=raw.get("title"),
        unit=raw.get("unit", ""),
        thresholds=tuple(sorted(_number(v, "each threshold") for v in limits)),
        bad=bad,
        min=None if raw.get("min") is None else _number(raw["min"], "'min'"),
        max=None if raw.get("max") is None else _number(raw["max"], "'max'"),
    )


def hint_of(check: Check) -> PanelHint | None:
    try:
        return parse_hint(check.spec.panel)
    except ValueError as exc:
        raise PanelHintError(f"{check.id}: @check(panel=...): {exc}") from None


def _runbook_links(check: Check, base: str) -> tuple[Link, ...]:
    if not check.runbook:
        return ()
    return (Link("Runbook", runbook_link(check.runbook, base) or "", tooltip=f"runbook of {check.name}"),)


def _runbook_data_link() -> tuple[Link, ...]:
    """A link on every series to the runbook its check's ``fraiseql_check_info`` names (the
    watcher joins it to ``notify.runbook_base_url``, so the label is the whole link)."""
    return (Link("Runbook of ${__field.labels.check}", "${__field.labels.runbook}"),)


def _in_suite(expr: str, suite: str) -> str:
    """``expr`` restricted to the suite's checks, with each check's runbook as a label."""
    info = select(m.INFO.name, SCOPE, suite=suite)
    return f"{expr} * on(job, instance, check) group_left(runbook) {info}"


def _of(check: Check, metric: m.Metric, **labels: str | Re) -> str:
    return select(metric.name, SCOPE, check=check.id, **labels)


def _describe(check: Check) -> str:
    parts = [check.description] if check.description else []
    parts.append(f"`{check.id}`: severity {check.severity}, every {check.interval:g}s.")
    return " ".join(parts)


def status_panel(check: Check, base: str) -> Panel:
    return Panel(
        check.name,
        "stat",
        (Target(f"min({_of(check, m.UP)})", instant=True),),
        description=_describe(check),
        thresholds=thresholds_for([1], bad="below"),
        mappings=STATUS_MAPPINGS,
        no_value="not run yet",
        links=_runbook_links(check, base),
        width=4,
        height=4,
    )


def value_panel(check: Check, hint: PanelHint, base: str) -> Panel:
    labels = {"name": hint.value} if hint.value else {}
    title = hint.title or (f"{check.name}: {hint.value}" if hint.value else f"{check.name}: recorded values")
    limits = ", ".join(f"{v:g}" for v in hint.thresholds)
    description = _describe(check)
    if limits:
        description += f" The check fails {'above' if hint.bad == 'above' else 'below'} {limits}."
    return Panel(
        title,
        "timeseries",
        (Target(_of(check, m.VALUE, **labels), legend="{{name}}"),),
        description=description,
        unit=hint.unit,
        thresholds=thresholds_for(hint.thresholds, hint.bad),
        min=hint.min,
        max=hint.max,
        links=_runbook_links(check, base),
    )


def _fastest_page() -> str:
    """``14.4 over 1h spends 2% of 30 days``: the fastest burn that pages, in words."""
    pair = PAGE.pairs[0]
    factor = decimal_text(pair.factor(REFERENCE_PERIOD_S))
    share = decimal_text(pair.budget_share * 100)
    return f"{factor} over {pair.long} spends {share}% of {REFERENCE_PERIOD_S / 86400:g} days"


def slo_panels(check: Check, base: str) -> tuple[Panel, ...]:
    links = _runbook_links(check, base)
    about = f"{check.name}: SLO {check.spec.slo}"
    burn_windows = Re("|".join(BURN_WINDOWS))
    return (
        Panel(
            f"{check.name}: error budget left",
            "stat",
            (Target(f"min({_of(check, SLO_BUDGET)})", instant=True),),
            description=f"{about}. 100% untouched, 0 spent, negative overspent.",
            unit="percentunit",
            thresholds=thresholds_for([0.0, 0.25], bad="below"),
            links=links,
            width=6,
        ),
        Panel(
            f"{check.name}: burn rate",
            "timeseries",
            (
                Target(
                    f"max by (window) ({_of(check, SLO_BURN, window=burn_windows)})",
                    legend="{{window}}",
                ),
            ),
            description=f"{about}. 1 spends the budget exactly over the period; {_fastest_page()}.",
            thresholds=thresholds_for(BURN_THRESHOLDS),
            links=links,
        ),
        Panel(
            f"{check.name}: SLI over the period",
            "timeseries",
            (
                Target(f"min({_of(check, SLO_SLI, window=PERIOD_WINDOW)})", legend="SLI"),
                Target(f"max({_of(check, SLO_OBJECTIVE)})", legend="objective"),
            ),
            description=f"{about}. The SLI over the whole period against its objective.",
            unit="percentunit",
            links=links,
            width=6,
        ),
    )


def overview_panels(suite: str) -> tuple[Panel, ...]:
    data_links = _runbook_data_link()
    bucket = select(m.DURATION.sample("bucket"), SCOPE)
    failed = select(m.RUNS.name, SCOPE, outcome=Re("failed|error"))
    stale = f"time() - {select(m.LAST_RUN.name, SCOPE)}"
    return (
        Panel(
            "Run duration p95",
            "timeseries",
            (
                Target(
                    "histogram_quantile(0.95, "
                    + _in_suite(f"sum by (job, instance, check, le) (rate({bucket}[{RATE}]))", suite)
                    + ")",
                    legend="{{check}}",
                ),
            ),
            description="How long each check's runs take, fixtures included (95th percentile).",
            unit="s",
            data_links=data_links,
            width=8,
        ),
        Panel(
            "Failed runs per minute",
            "timeseries",
            (
                Target(
                    _in_suite(f"sum by (job, instance, check) (rate({failed}[{RATE}])) * 60", suite),
                    legend="{{check}}",
                ),
            ),
            description="Runs that failed or errored, per minute, by check.",
            data_links=data_links,
            width=8,
        ),
        Panel(
            "Time since the last run",
            "timeseries",
            (Target(_in_suite(stale, suite), legend="{{check}}"),),
            description="Seconds since each check last started; a line that keeps climbing is a check that stopped.",
            unit="s",
            data_links=data_links,
            width=8,
        ),
        Panel(
            "Recorded values",
            "timeseries",
            (Target(_in_suite(select(m.VALUE.name, SCOPE), suite), legend="{{check}} {{name}}"),),
            description="Every value the suite's checks record with fraiseql_checks.record(name, value).",
            data_links=data_links,
            width=24,
        ),
    )


def suite_dashboard(suite: str, checks: Sequence[Check], base: str) -> Dashboard:
    """The dashboard of one suite (``checks`` all belong to it)."""
    ordered = sorted(checks, key=lambda c: c.id)
    rows = [Row("Status", tuple(status_panel(check, base) for check in ordered))]
    rows.append(Row("Runs", overview_panels(suite)))
    values = []
    for check in ordered:
        hint = hint_of(check)
        if hint is not None:
            values.append(value_panel(check, hint, base))
    if values:
        rows.append(Row("Values the checks assert on", tuple(values)))
    slo = [panel for check in ordered if check.spec.slo for panel in slo_panels(check, base)]
    if slo:
        rows.append(Row("SLOs", tuple(slo)))
    return Dashboard(
        title=suite_title(suite),
        identity=suite_identity(suite),
        rows=tuple(rows),
        variables=(datasource_variable(), *label_variables(m.UP.name, what="fraiseql-check --watch")),
        tags=("checks", f"suite-{suite}"),
        description=(
            f"The {len(ordered)} checks of suite {suite!r} as fraiseql-check --watch exports them. "
            "Generated by `fraiseql-check generate dashboards` from the checks' metadata: regenerate, do not edit."
        ),
        links=(all_dashboards_link(),),
    )


def suite_title(suite: str) -> str:
    return f"Checks: {suite}"


def suite_identity(suite: str) -> str:
    return f"suite/{suite}"


def suite_dashboard_url(grafana_url: str, suite: str) -> str:
    """Where Grafana shows a suite's dashboard (``/d/<uid>/<slug>``), for links from messages."""
    return f"{grafana_url.rstrip('/')}/d/{stable_uid(suite_identity(suite))}/{slug(suite_title(suite))}"


def suite_dashboards(checks: Iterable[Check], base: str = "") -> dict[str, Dashboard]:
    """One dashboard per suite, by suite name, in suite order."""
    by_suite: dict[str, list[Check]] = {}
    for check in checks:
        by_suite.setdefault(check.suite, []).append(check)
    return {suite: suite_dashboard(suite, by_suite[suite], base) for suite in sorted(by_suite)}
