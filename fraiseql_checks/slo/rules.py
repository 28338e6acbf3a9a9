"""``fraiseql-check generate slo-rules``: Sloth-compatible recording and burn-rate alerting rules for the SLOs.

One rule file per SLO service, ``alerts/slo/<service>.rules.yml``, and in it three
groups per SLO, named and shaped as Sloth names and shapes them, so Sloth's Grafana
dashboards read them unchanged:

- ``sloth-slo-sli-recordings-<id>``: the error ratio over each burn window
  (``slo:sli_error:ratio_rate5m`` ... ``ratio_rate3d``) and over the whole period
  (``slo:sli_error:ratio_rate30d``, the average of the 5m ratio);
- ``sloth-slo-meta-recordings-<id>``: objective, error budget, period, burn rates,
  budget remaining, ``sloth_slo_info``;
- ``sloth-slo-alerts-<id>``: the multi-window multi-burn-rate alerts of the Google SRE
  workbook (chapter 5), one page and one ticket rule, reading the recordings (either
  left out where the SLO disables it, the group where it disables both).

Where these rules differ from what Sloth generates for the same spec, on purpose,
``tests/slo/test_sloth_examples.py`` says so, against Sloth's own examples.

The files are deterministic (no timestamps, SLOs sorted by name), so a committed copy
can be compared with ``generate slo-rules --check``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from fractions import Fraction
from typing import Any

from fraiseql_checks.alerting.rules import RUNBOOKS, RuleSettings, promql_string, render, rule_settings, template_text
from fraiseql_checks.config import Config
from fraiseql_checks.generate import GenerateError
from fraiseql_checks.promql import PromQLError, parse
from fraiseql_checks.slo.model import (
    BURN_WINDOWS,
    PAGE,
    SLO,
    TICKET,
    PeriodKind,
    Severity,
    SLOError,
    decimal_text,
    exact,
)
from fraiseql_checks.targets.profiles import DEFAULT_PROFILE

FOLDER = "alerts/slo"
#: The alert's name unless the SLO's ``alerting.name`` says otherwise.
ALERT = "ErrorBudgetBurn"
RUNBOOK = f"{RUNBOOKS}/{ALERT}.md"

SLI_ERROR = "slo:sli_error:ratio_rate{window}"
OBJECTIVE = "slo:objective:ratio"
ERROR_BUDGET = "slo:error_budget:ratio"
TIME_PERIOD = "slo:time_period:days"
CURRENT_BURN_RATE = "slo:current_burn_rate:ratio"
PERIOD_BURN_RATE = "slo:period_burn_rate:ratio"
BUDGET_REMAINING = "slo:period_error_budget_remaining:ratio"
INFO = "sloth_slo_info"

ID_LABEL, SERVICE_LABEL, SLO_LABEL = "sloth_id", "sloth_service", "sloth_slo"
WINDOW_LABEL, SEVERITY_LABEL = "sloth_window", "sloth_severity"
#: Labels the rules set and the dashboards select on: an SLO's own labels cannot change them.
RESERVED = frozenset({ID_LABEL, SERVICE_LABEL, SLO_LABEL, WINDOW_LABEL, SEVERITY_LABEL})
#: Sloth's ``sloth_mode`` label of ``sloth_slo_info``: who generated the rules.
MODE = "fraiseql-check"


# ---- numbers and labels ------------------------------------------------------------------


def percent_text(value: Fraction) -> str:
    return decimal_text(value * 100) + "%"


def identity(slo: SLO) -> dict[str, str]:
    """The labels naming an SLO (Sloth's): ``sloth_id``, ``sloth_service``, ``sloth_slo``."""
    return {ID_LABEL: slo.id, SERVICE_LABEL: slo.service, SLO_LABEL: slo.name}


def selector(slo: SLO) -> str:
    """The selector of one SLO's recordings (Sloth's filter)."""
    return "{" + ", ".join(f"{name}={promql_string(value)}" for name, value in identity(slo).items()) + "}"


def slo_labels(slo: SLO) -> dict[str, str]:
    """The labels of every recording of an SLO: its identity, the check of a check SLO, its own labels."""
    labels = identity(slo)
    if slo.check_id is not None:
        labels["check"] = slo.check_id
    for name, value in sorted(slo.labels.items()):
        if name not in RESERVED and name not in labels:
            labels[name] = value
    return labels


def period_text(slo: SLO) -> str:
    """``30d``, or ``the calendar month (30d in the rules)``: Prometheus has no calendar windows."""
    period = slo.period
    if period.kind is PeriodKind.ROLLING:
        return period.label
    return f"the calendar {period.kind.value} ({period.prometheus_window} in the rules)"


# ---- the rules ---------------------------------------------------------------------------


def sli_rules(slo: SLO) -> list[dict[str, Any]]:
    """The error ratio over each burn window, then over the whole period."""
    labels = slo_labels(slo)
    rules = []
    for window in BURN_WINDOWS:
        rules.append(
            {
                "record": SLI_ERROR.format(window=window),
                "expr": slo.sli.error_ratio_query(window),
                "labels": {**labels, WINDOW_LABEL: window},
            }
        )
    # As Sloth does: the mean of the 5m ratio over the period, far cheaper than a 30d rate
    # (each 5m ratio weighs the same, whatever the traffic in its 5 minutes).
    period = slo.period.prometheus_window
    short = f"{SLI_ERROR.format(window=BURN_WINDOWS[0])}{selector(slo)}[{period}]"
    expr = f"sum_over_time({short})\n/ ignoring ({WINDOW_LABEL})\ncount_over_time({short})"
    rules.append({"record": SLI_ERROR.format(window=period), "expr": expr, "labels": {**labels, WINDOW_LABEL: period}})
    return rules


def meta_rules(slo: SLO) -> list[dict[str, Any]]:
    """Objective, budget, period, burn rates and budget remaining, and ``sloth_slo_info``."""
    labels = slo_labels(slo)
    where = selector(slo)
    on = f"on({ID_LABEL}, {SLO_LABEL}, {SERVICE_LABEL}) group_left"
    period = slo.period.prometheus_window
    objective = slo.objective

    def burn(window: str) -> str:
        return f"{SLI_ERROR.format(window=window)}{where}\n/ {on}\n{ERROR_BUDGET}{where}"

    def rule(name: str, expr: str, extra: Mapping[str, str] | None = None) -> dict[str, Any]:
        return {"record": name, "expr": expr, "labels": {**labels, **(extra or {})}}

    info = {"sloth_objective": decimal_text(objective.ratio * 100), "sloth_mode": MODE}
    return [
        rule(OBJECTIVE, f"vector({decimal_text(objective.ratio)})"),
        rule(ERROR_BUDGET, f"vector({decimal_text(objective.budget)})"),
        rule(TIME_PERIOD, f"vector({decimal_text(exact(slo.period.seconds) / 86400)})"),
        rule(CURRENT_BURN_RATE, burn(BURN_WINDOWS[0])),
        rule(PERIOD_BURN_RATE, burn(period)),
        rule(BUDGET_REMAINING, f"1 - {PERIOD_BURN_RATE}{where}"),
        rule(INFO, "vector(1)", info),
    ]


def burn_expr(slo: SLO, severity: Severity) -> str:
    """``(long and short above factor × budget) or (the other pair)``, on the recordings."""
    where = selector(slo)
    budget = decimal_text(slo.objective.budget)

    def above(window: str, factor: Fraction) -> str:
        series = f"{SLI_ERROR.format(window=window)}{where}"
        return f"max({series} > ({decimal_text(factor)} * {budget})) without ({WINDOW_LABEL})"

    pairs = []
    for pair in severity.pairs:
        factor = pair.factor(slo.period.seconds)
        pairs.append(f"(\n    {above(pair.long, factor)}\n    and\n    {above(pair.short, factor)}\n)")
    return "\nor\n".join(pairs)


def _lasts(seconds: float) -> str:
    """How long a budget lasts, in words: ``50 hours``, ``10 days``."""
    hours = seconds / 3600
    if hours < 72:
        return f"{hours:.3g} hours"
    return f"{hours / 24:.3g} days"


def _describe(slo: SLO, severity: Severity) -> str:
    budget = slo.objective.budget
    conditions = []
    for pair in severity.pairs:
        factor = pair.factor(slo.period.seconds)
        conditions.append(
            f"above {decimal_text(factor)} × {percent_text(budget)} = {percent_text(factor * budget)}"
            f" over both the last {pair.long} and {pair.short}"
        )
    fastest = severity.pairs[0].factor(slo.period.seconds)
    text = (
        f"The SLO {slo.name} of {slo.service} aims at {slo.objective} over {period_text(slo)}. It spends its"
        f" error budget {'fast' if severity is PAGE else 'faster than it can last'}: its error ratio was"
        f" {', or '.join(conditions)}. At {decimal_text(fastest)} times the sustainable rate the whole"
        f" budget lasts {_lasts(slo.period.seconds / float(fastest))}."
    )
    if slo.description:
        text += f" The SLO: {slo.description}"
    return template_text(text) + " Error ratio over the longer window: {{ $value | humanizePercentage }}."


def title(severity: Severity) -> str:
    """Sloth's ``title`` annotation, word for word (its notification templates read it)."""
    return (
        f"({severity.name}) {{{{$labels.{SERVICE_LABEL}}}}} {{{{$labels.{SLO_LABEL}}}}}"
        " SLO error budget burn rate is too fast."
    )


def severities(slo: SLO) -> tuple[Severity, ...]:
    """The alerts an SLO gets: page and ticket, less what its ``alerting`` turns off."""
    alerting = slo.alerting
    if not alerting.enabled:
        return ()
    return tuple(
        severity for severity, enabled in ((PAGE, alerting.page_enabled), (TICKET, alerting.ticket_enabled)) if enabled
    )


def alert_rule(slo: SLO, severity: Severity, settings: RuleSettings) -> dict[str, Any]:
    """The page or the ticket rule of one SLO."""
    alerting = slo.alerting
    labels = {"severity": severity.severity, SEVERITY_LABEL: severity.name, **identity(slo)}
    labels["service"] = slo.labels.get("service") or settings.service
    if slo.check_id is not None:
        labels["check"] = slo.check_id
    extra = alerting.page_labels if severity is PAGE else alerting.ticket_labels
    for name, value in [*alerting.labels.items(), *extra.items()]:
        if name not in RESERVED:
            labels[name] = value
    what = "too fast" if severity is PAGE else "faster than it can last"
    annotations = {
        "summary": template_text(f"SLO {slo.service}/{slo.name} burns its error budget {what}"),
        "title": title(severity),
        "description": _describe(slo, severity),
        "runbook_url": settings.runbook_url(slo.runbook or RUNBOOK) or "",
        **alerting.annotations,
    }
    return {
        "alert": alerting.name or ALERT,
        "expr": burn_expr(slo, severity),
        "labels": labels,
        "annotations": annotations,
    }


def slo_groups(slo: SLO, settings: RuleSettings) -> dict[str, list[dict[str, Any]]]:
    """The three groups of one SLO (no alert group when both its alerts are disabled)."""
    groups = {
        f"sloth-slo-sli-recordings-{slo.id}": sli_rules(slo),
        f"sloth-slo-meta-recordings-{slo.id}": meta_rules(slo),
    }
    alerts = severities(slo)
    if alerts:
        groups[f"sloth-slo-alerts-{slo.id}"] = [alert_rule(slo, s, settings) for s in alerts]
    for rules in groups.values():
        for rule in rules:
            try:
                parse(rule["expr"])
            except PromQLError as exc:
                name = rule.get("record") or rule.get("alert")
                raise SLOError(slo.source, slo.name, f"{name}: {exc.reason} in {rule['expr']!r}") from None
    return groups


def file_name(service: str, profile: str = DEFAULT_PROFILE) -> str:
    """``alerts/slo/<service>.rules.yml`` for the default profile, ``alerts/<profile>/slo/...`` for another."""
    folder = FOLDER if profile == DEFAULT_PROFILE else f"alerts/{profile}/slo"
    return f"{folder}/{re.sub(r'[^A-Za-z0-9_.-]', '-', service)}.rules.yml"


def _render(members: list[SLO], settings: RuleSettings, profile: str) -> str:
    groups: dict[str, list[dict[str, Any]]] = {}
    for slo in sorted(members, key=lambda s: (s.name, s.service)):
        groups.update(slo_groups(slo, settings))
    # A check SLO comes from its check: name the file, as for the SLO files.
    sources = ", ".join(sorted({slo.source.split("::", 1)[0] for slo in members})) or "no SLO of this profile"
    header = (
        f"# Generated by `fraiseql-check generate slo-rules` (profile {profile}) from {sources}.\n"
        "# Edit the SLO definitions and generate again; changes made here are lost.\n"
        "# Sloth-compatible (slo:* recordings, sloth_* labels): Sloth's Grafana dashboards read them.\n"
    )
    return render(groups, header)


def slo_rule_files(slos: Iterable[SLO], settings: RuleSettings) -> dict[str, str]:
    """Every rule file, by path from the root: one per service, its SLOs sorted by name.

    SLOs tied to a profile (``profile:`` in slos.yaml: their queries use that
    profile's metric names) go to that profile's file. The default profile's files
    are ``alerts/slo/``; another profile gets ``alerts/<profile>/slo/<service>.rules.yml``
    only where its SLOs differ from the default's (as ``generate alerts`` lays out
    profiles, so the metrics contract of a target reads its own profile's rules).
    """
    from fraiseql_checks.targets.profiles import PROFILES

    every = list(slos)
    services = sorted({slo.service for slo in every})
    files = {}
    for service in services:
        members = [slo for slo in every if slo.service == service]
        default = [slo for slo in members if slo.applies_to(DEFAULT_PROFILE)]
        if default:
            files[file_name(service)] = _render(default, settings, DEFAULT_PROFILE)
        for profile in sorted(PROFILES):
            if profile == DEFAULT_PROFILE:
                continue
            own = [slo for slo in members if slo.applies_to(profile)]
            if own != default:
                files[file_name(service, profile)] = _render(own, settings, profile)
    return files


def make(config: Config) -> dict[str, str]:
    from fraiseql_checks.core.session import ExitCode
    from fraiseql_checks.slo.plugin import load_slos

    try:
        slos = load_slos(config)
        files = slo_rule_files(slos, rule_settings(config))
    except SLOError as exc:
        raise GenerateError(str(exc), ExitCode.USAGE_ERROR) from None
    if not files:
        print("no SLOs (@check(slo=...) or SLO files): no SLO rules to generate")
    for stale in sorted(
        [*config.rootdir.glob(f"{FOLDER}/*.rules.yml"), *config.rootdir.glob("alerts/*/slo/*.rules.yml")]
    ):
        relpath = stale.relative_to(config.rootdir).as_posix()
        if relpath not in files:
            print(f"{relpath}: no SLO of this service any more; delete the file")
    return files
