"""``fraiseql-check generate alerts``: Prometheus alerting rules from the checks.

Two kinds of rules come out, per target profile (``alerts/*.rules.yml`` for the
default profile, ``alerts/<profile>/*.rules.yml`` for the others; each folder is
complete on its own):

- every ``@alert`` check, as the rule it declares, in a group (and a file) named
  after its module: ``checks/alerts/check_performance.py`` → ``performance.rules.yml``;
- from every other check's metadata, rules on the metrics watch mode exports
  (``metrics.py``): the check failing, any check gone stale, the watcher down or
  absent (``fraiseql-checks.rules.yml``).

An alert on the watcher's own series (``fraiseql_check_*``) keeps firing, for up to
``alerts.keep_firing_for``, while those series are gone (the watcher is down,
restarting, or no longer scraped), so the watcher's death is announced by
``FraiseQLCheckWatcherDown``, not by a recovery of every failing check; a check that
reports again decides at once (``keep_firing``).

The files are deterministic (no timestamps, stable order), so a committed copy can
be compared with ``generate alerts --check``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from fraiseql_checks.config import (
    Config,
    Parser,
    Setting,
    as_duration_or_zero,
    as_positive_int,
    as_str,
    resolve_section,
    section,
)
from fraiseql_checks.core.fixtures import dependencies_of
from fraiseql_checks.durations import format_duration
from fraiseql_checks.generate import Generator, Generators, collect_checks
from fraiseql_checks.hookspec import hookimpl
from fraiseql_checks.promql import metric_names, regex_escape
from fraiseql_checks.promql import promql_string as promql_string  # re-exported: slo/ imports it from here
from fraiseql_checks.runbooks import BASE_URL, runbook_base_url, runbook_link
from fraiseql_checks.runbooks import SECTION as RUNBOOK_SECTION

if TYPE_CHECKING:
    from fraiseql_checks.alerting.alerts import AlertSpec
    from fraiseql_checks.checks import Check
    from fraiseql_checks.core.session import Session

FOLDER = "alerts"
CHECK_RULES_GROUP = "fraiseql-checks"
RUNBOOKS = "docs/runbooks"

FAILING = "FraiseQLCheckFailing"
STALE = "FraiseQLCheckStale"
WATCHER_DOWN = "FraiseQLCheckWatcherDown"
WATCHER_ABSENT = "FraiseQLCheckWatcherAbsent"
WATCHER_DOWN_FOR = 60.0
WATCHER_ABSENT_FOR = 300.0
#: How long an alert on the watcher's series keeps firing once they vanish (``alerts.keep_firing_for``):
#: well past WATCHER_DOWN_FOR and WATCHER_ABSENT_FOR, so the watcher's death is announced first,
#: and long enough to ride out a restart or a rescheduled pod without a resolve and a new page.
KEEP_FIRING_FOR = 900.0

#: The annotations of every generated alert; Alertmanager's messages read them.
SUMMARY, DESCRIPTION, RUNBOOK_URL = "summary", "description", "runbook_url"

#: The label that lists the targets an alert depends on (Alertmanager's inhibition matches it).
DEPENDS_ON = "depends_on"

SETTINGS = [
    Setting("service", as_str, help="the `service` label of every generated alert (default fraiseql)"),
    Setting("watcher_job", as_str, help="the Prometheus job that scrapes the watcher (default fraiseql-check)"),
    Setting("stale_intervals", as_positive_int, help="intervals without a run before a check is stale (default 3)"),
    Setting(
        "keep_firing_for",
        as_duration_or_zero,
        help="how long an alert on the watcher's series keeps firing once they vanish (default 15m; 0: not at all)",
    ),
]


@dataclasses.dataclass(frozen=True)
class RuleSettings:
    service: str = "fraiseql"
    runbook_base_url: str = ""
    watcher_job: str = "fraiseql-check"
    stale_intervals: int = 3
    keep_firing_for: float = KEEP_FIRING_FOR
    #: Failing runs in a row before a check is failing, when it does not say (watch mode's setting).
    failure_threshold: int = 1

    def runbook_url(self, runbook: str | None) -> str | None:
        """A runbook path joined to ``notify.runbook_base_url``; a URL stays as it is."""
        return runbook_link(runbook, self.runbook_base_url)


@hookimpl
def fraiseql_addoption(parser: Parser) -> None:
    parser.addsetting(
        Setting(
            "alerts",
            section(SETTINGS, moved={BASE_URL: f"{RUNBOOK_SECTION}.{BASE_URL}"}),
            {},
            "generated alerting rules: labels and the watcher's job",
        )
    )


def rule_settings(config: Config) -> RuleSettings:
    values = {k: v for k, v in resolve_section(config, "alerts", SETTINGS).items() if v is not None}
    values["runbook_base_url"] = runbook_base_url(config)
    try:
        values.setdefault("failure_threshold", config.get("failure_threshold"))
    except KeyError:  # watch mode's plugin is disabled
        pass
    return RuleSettings(**values)


# ---- writing PromQL and templates -------------------------------------------------------


def failing_expr(check_id: str | None = None, *, function: str | None = None) -> str:
    """PromQL true for a check whose last run failed (``fraiseql_check_up`` at 0), unless a
    maintenance window silences it (``fraiseql_check_silenced`` at 1, as watch mode exports it).

    ``check_id`` selects one check (``checks/health/check_database.py::check_database_answers``);
    ``function`` the checks of that function name, in any folder (not its parametrized ones).
    ``FraiseQLCheckFailing`` and the ``@alert`` checks that read a health check both use it, so
    a maintenance window silences them alike.

    Aggregated by check (``max by (check)``): with several watchers in a cluster a check's
    series move from one watcher (``instance``) to another on a takeover, and an alert
    keyed by the instance would resolve and fire again, announced twice, on every handover.
    """
    if (check_id is None) == (function is None):
        raise TypeError("failing_expr() takes exactly one of a check id and function=")
    # the watcher's metric names: imported when a rule is written, not at every start
    from fraiseql_checks import metrics as m

    if check_id is not None:
        matcher = f"check={promql_string(check_id)}"
    else:
        matcher = f"check=~{promql_string('.*::' + regex_escape(str(function)))}"
    return (
        f"max by (check) ({m.UP.name}{{{matcher}}}) == 0"
        f" unless on(check) max by (check) ({m.SILENCED.name}{{{matcher}}}) == 1"
    )


def template_text(text: str) -> str:
    """Plain text inside an annotation, where Prometheus expands ``{{ ... }}`` templates."""
    return text.replace("{{", '{{ "{{" }}')


# ---- keeping an alert firing while the watcher is gone -------------------------------------


def own_series(expr: str) -> set[str]:
    """The metric names in ``expr`` that this tool's watcher exports (the ``fraiseql_check_`` namespace)."""
    from fraiseql_checks import metrics as m

    return {name for name in metric_names(expr) if name.startswith(m.NAMESPACE)}


def keep_firing(name: str, expr: str, settings: RuleSettings) -> str:
    """``expr`` made to keep the alerts it fired while the watcher does not report their check.

    When Prometheus stops scraping the watcher (down, restarting, rescheduled), its series go
    stale at once: an expression on them matches nothing, and every alert it fired would
    resolve although nothing says its check passes. Rewritten, an alert that was firing
    (``ALERTS``) keeps the last result the expression gave, for up to
    ``alerts.keep_firing_for``, until the watcher reports that check again
    (``fraiseql_check_up``: a restarted watcher decides at the check's first run). A result
    without a ``check`` label (a sum over checks) is kept until Prometheus scrapes the
    watcher again. A passing check resolves at once, which the rule field
    ``keep_firing_for`` could not do: it would hold every recovery too. Expressions that
    read none of the watcher's series are returned as they are.
    """
    if settings.keep_firing_for <= 0 or not own_series(expr):
        return expr
    from fraiseql_checks import metrics as m

    window = format_duration(math.ceil(settings.keep_firing_for))
    # ``up`` has no check label: on(check) it matches exactly the results that have none.
    reported = f"{m.UP.name} or up{{job={promql_string(settings.watcher_job)}}} == 1"
    firing = f'ALERTS{{alertname={promql_string(name)}, alertstate="firing"}}'
    return (
        f"({expr})\nor (\n  last_over_time(({expr})[{window}:])\n"
        f"  unless on(check) ({reported})\n  and on(check) {firing}\n)"
    )


# ---- the rules ---------------------------------------------------------------------------


def alert_rule(spec: AlertSpec, expr: str, settings: RuleSettings) -> dict[str, Any]:
    """The rule an ``@alert`` declares, for one profile's expression."""
    labels = {"severity": spec.severity, "service": settings.service, **spec.labels}
    if spec.depends_on:
        labels[DEPENDS_ON] = ",".join(sorted(spec.depends_on))
    annotations = {SUMMARY: spec.summary, DESCRIPTION: spec.description}
    url = settings.runbook_url(spec.runbook)
    if url:
        annotations[RUNBOOK_URL] = url
    return _rule(spec.name, expr, spec.for_, labels, annotations, settings)


def _rule(
    name: str,
    expr: str,
    hold: float,
    labels: Mapping[str, str],
    annotations: Mapping[str, str],
    settings: RuleSettings,
) -> dict[str, Any]:
    rule: dict[str, Any] = {"alert": name, "expr": keep_firing(name, expr, settings)}
    if hold > 0:
        rule["for"] = format_duration(hold)
    rule["labels"] = dict(labels)
    rule["annotations"] = dict(annotations)
    return rule


def depends_on(session: Session, check: Check) -> list[str]:
    """The targets a check depends on (its fixtures' and its declared ones)."""
    return list(dependencies_of(session.fixtures, check))


def failing_hold(check: Check, settings: RuleSettings) -> tuple[float, int]:
    """How long ``fraiseql_check_up`` must stay 0, and the failing runs in a row that takes.

    A check is failing after ``failure_threshold`` failing runs in a row: the first
    sets ``up`` to 0, the last comes ``threshold - 1`` intervals later.
    """
    threshold = check.spec.failure_threshold or settings.failure_threshold
    return check.interval * (threshold - 1), threshold


def check_labels(check: Check, settings: RuleSettings) -> dict[str, str]:
    """The failing rule's labels: severity, service, suite, the check (as its series says, but
    a rule per check must differ in its labels), the check's own labels."""
    labels = {"severity": check.severity, "service": settings.service, "suite": check.suite, "check": check.id}
    for name, value in check.labels.items():
        if name == "service":
            labels["service"] = value
        elif name != "suite":
            labels[name if name not in ("severity", "check", "alertname") else f"label_{name}"] = value
    return labels


def failing_rule(session: Session, check: Check, settings: RuleSettings) -> dict[str, Any]:
    """``FraiseQLCheckFailing`` for one check: its ``up`` at 0 for as long as its threshold takes."""
    hold, threshold = failing_hold(check, settings)
    expr = failing_expr(check.id)
    labels = check_labels(check, settings)
    targets = depends_on(session, check)
    if targets:
        labels[DEPENDS_ON] = ",".join(targets)
    runs = "its last run" if threshold == 1 else f"{threshold} runs in a row"
    description = f"{check.id} failed {runs} (it runs every {format_duration(check.interval)})."
    if check.description:
        description += f" The check: {check.description}"
    annotations = {
        SUMMARY: template_text(f"{check.name} is failing"),
        DESCRIPTION: template_text(description),
        RUNBOOK_URL: settings.runbook_url(check.runbook or f"{RUNBOOKS}/{FAILING}.md") or "",
    }
    return _rule(FAILING, expr, hold, labels, annotations, settings)


def watcher_rules(settings: RuleSettings) -> list[dict[str, Any]]:
    """Any check gone stale; the watcher down (Prometheus cannot scrape it) or absent (no such target)."""
    from fraiseql_checks import metrics as m

    job = promql_string(settings.watcher_job)
    job_text = template_text(settings.watcher_job)
    n = settings.stale_intervals
    if settings.keep_firing_for > 0:
        kept = (
            "the alerts that read them keep firing as they were until it reports their checks again,"
            f" for up to {format_duration(math.ceil(settings.keep_firing_for))}."
        )
    else:
        kept = "the alerts that read them resolve, though nothing says their checks pass."

    def rule(name: str, expr: str, hold: float, severity: str, summary: str, description: str) -> dict[str, Any]:
        runbook = settings.runbook_url(f"{RUNBOOKS}/{name}.md") or ""
        annotations = {SUMMARY: summary, DESCRIPTION: description, RUNBOOK_URL: runbook}
        return _rule(name, expr, hold, {"severity": severity, "service": settings.service}, annotations, settings)

    return [
        rule(
            STALE,
            f"time() - {m.LAST_RUN.name} > {n} * {m.INTERVAL.name}",
            0,
            "warning",
            "Check {{ $labels.check }} has not run for {{ $value | humanizeDuration }}",
            "The watcher {{ $labels.instance }} has not started a run of {{ $labels.check }} for"
            f" {{{{ $value | humanizeDuration }}}}, more than {n} of its intervals: the check hangs past"
            " its timeout, the event loop is blocked, or the watcher stopped scheduling it.",
        ),
        rule(
            WATCHER_DOWN,
            f"up{{job={job}}} == 0",
            WATCHER_DOWN_FOR,
            "critical",
            "The fraiseql-check watcher {{ $labels.instance }} is down",
            f"Prometheus has not been able to scrape the watcher {{{{ $labels.instance }}}} (job {job_text}) for"
            f" {format_duration(WATCHER_DOWN_FOR)}: the checks it runs report nothing; {kept}",
        ),
        rule(
            WATCHER_ABSENT,
            f"absent(up{{job={job}}})",
            WATCHER_ABSENT_FOR,
            "critical",
            "No fraiseql-check watcher is scraped",
            f"Prometheus has had no target in job {job_text} for {format_duration(WATCHER_ABSENT_FOR)}: the"
            " watcher is not deployed, or the scrape configuration lost it (set alerts.watcher_job if the job"
            " has another name).",
        ),
    ]


def check_rules(session: Session, checks: Iterable[Check], settings: RuleSettings) -> list[dict[str, Any]]:
    """One failing rule per ordinary check (``@alert`` checks have their own), then the watcher's rules."""
    ordinary = sorted((c for c in checks if c.spec.alert is None), key=lambda c: c.id)
    return [failing_rule(session, check, settings) for check in ordinary] + watcher_rules(settings)


def group_of(check: Check) -> str:
    """The group (and file) of an ``@alert`` check: its module's name without ``check_``."""
    return check.path.stem.removeprefix("check_")


def alert_groups(checks: Iterable[Check], profile: str, settings: RuleSettings) -> dict[str, list[dict[str, Any]]]:
    """The ``@alert`` rules of one profile, by group, in the order the checks are written."""
    from fraiseql_checks.alerting.alerts import AlertSpec  # imported by a generator's run, not every start

    groups: dict[str, list[dict[str, Any]]] = {}
    for check in sorted(checks, key=lambda c: (c.path, c.lineno)):
        spec = check.spec.alert
        if not isinstance(spec, AlertSpec):
            continue
        expr = spec.expr_for(profile)
        if expr is not None:
            groups.setdefault(group_of(check), []).append(alert_rule(spec, expr, settings))
    return groups


def yaml_text(document: Mapping[str, Any], *, pure: bool = False) -> str:
    """YAML as Prometheus' and Alertmanager's configs are written: block style, keys in
    the order given, long expressions on one line, text of several lines as a ``|`` block.

    libyaml's emitter when PyYAML has it (a test checks it writes what the pure-Python
    one does, so the files do not depend on the machine), else the pure-Python one.
    """
    import yaml

    base = yaml.SafeDumper if pure else getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    dumper: Any = type("Dumper", (base,), {})  # a subclass, so the representer stays ours

    def text(dumper: Any, value: str) -> Any:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)

    dumper.add_representer(str, text)
    out: str = yaml.dump(
        dict(document), Dumper=dumper, sort_keys=False, width=10_000, allow_unicode=True, default_flow_style=False
    )
    return out


def render(groups: Mapping[str, list[dict[str, Any]]], header: str) -> str:
    """A rule file: a comment saying where it comes from, then the groups as YAML."""
    return header + yaml_text({"groups": [{"name": name, "rules": rules} for name, rules in groups.items()]})


def profile_folder(profile: str) -> str:
    from fraiseql_checks.targets.profiles import DEFAULT_PROFILE  # the profiles' tables: not imported at every start

    return FOLDER if profile == DEFAULT_PROFILE else f"{FOLDER}/{profile}"


def rule_files(session: Session, settings: RuleSettings) -> dict[str, str]:
    """Every rule file, by path from the root."""
    from fraiseql_checks.targets.profiles import DEFAULT_PROFILE, PROFILES

    checks = session.checks
    sources: dict[str, set[str]] = {}
    for check in checks:
        if check.spec.alert is not None:
            sources.setdefault(group_of(check), set()).add(check.relpath)
    generated = render({CHECK_RULES_GROUP: check_rules(session, checks, settings)}, "")
    files: dict[str, str] = {}
    for profile in sorted(PROFILES, key=lambda p: p != DEFAULT_PROFILE):
        folder = profile_folder(profile)
        note = "# Generated by `fraiseql-check generate alerts` (profile {profile}) from {source}.\n"
        note += "# Edit the checks and generate again; changes made here are lost.\n"
        for group, rules in alert_groups(checks, profile, settings).items():
            header = note.format(profile=profile, source=", ".join(sorted(sources[group])))
            files[f"{folder}/{group}.rules.yml"] = render({group: rules}, header)
        header = note.format(profile=profile, source="the metadata of the checks and metrics.py")
        files[f"{folder}/{CHECK_RULES_GROUP}.rules.yml"] = header + generated
    return files


def _make(config: Config) -> dict[str, str]:
    return rule_files(collect_checks(config), rule_settings(config))


@hookimpl
def fraiseql_add_generators(generators: Generators) -> None:
    generators.add(
        Generator(
            "alerts",
            "Prometheus alerting rules: the @alert checks, and failing/stale/watcher rules for every check",
            _make,
        )
    )
