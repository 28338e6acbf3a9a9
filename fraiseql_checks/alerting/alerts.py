"""``@alert``: an alert condition written once, as a check, and compiled to a Prometheus rule.

An ``@alert`` function is a normal collected check whose body is its docstring::

    @alert(expr='sum(rate(fraiseql_graphql_queries_error[5m])) / sum(rate(fraiseql_graphql_queries_total[5m])) > 0.05',
           for_="5m", severity="warning")
    def check_high_error_rate():
        '''GraphQL error rate above 5% for 5 minutes.'''

Run as a check it asks Prometheus (the ``prom`` fixture) for the expression: series
that have held for ``for_`` fail the check, with their labels and values. On a
check's first run the condition's recent past is read with a range query; in
watch mode the later runs remember since when each series has been firing, as
Prometheus does between evaluations. ``fraiseql-check generate alerts`` writes the
same definition as an alerting rule (``rules.py``). The expression is parsed at
collection, so one that Prometheus would reject is a collection error.

FraiseQL's series are named by their role (``profiles.py``), so one expression serves
every target profile::

    @alert(expr="sum(rate({{graphql_errors}}[5m])) / sum(rate({{graphql_requests}}[5m])) > 0.05")

``{{graphql_errors}}`` becomes ``fraiseql_graphql_queries_error`` for FraiseQL v2 and
``fraiseql_graphql_queries_errors_total`` for v1; a profile without a series for one of
the roles has no such alert.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from fraiseql_checks.durations import format_duration, parse_duration
from fraiseql_checks.errors import TargetError
from fraiseql_checks.spec import SEVERITIES, SPEC_ATTR, TARGETS, CheckSpec, make_spec, validate_labels
from fraiseql_checks.stash import StashKey
from fraiseql_checks.targets.profiles import (
    DEFAULT_PROFILE,
    PROFILES,
    RoleError,
    expand,
    expand_per_profile,
    missing_roles,
)
from fraiseql_checks.trace import current, record

if TYPE_CHECKING:
    from fraiseql_checks.config import Config
    from fraiseql_checks.targets.prometheus import PrometheusClient, Sample, Series

F = TypeVar("F", bound=Callable[..., Any])

#: Alert names follow Prometheus' rule format: a valid metric name.
_ALERT_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
#: Labels a rule may not set itself: Prometheus owns ``alertname``, ``severity`` has its argument.
_RESERVED_LABELS = ("alertname", "severity")
#: Tag every ``@alert`` check carries, so ``-m alert`` selects them.
ALERT_TAG = "alert"
#: The placeholder of an alert's threshold in its expression.
_THRESHOLD = "{{threshold}}"
#: The pending-since times of every alert check in this run.
PENDING_KEY: StashKey[PendingAlerts] = StashKey("alerts.pending")
#: The first run looks back over ``for_`` in at most this many steps, each at most
#: this long (a typical rule evaluation interval) or the check's interval.
_LOOKBACK_STEPS = 60
_LOOKBACK_STEP = 15.0


@dataclasses.dataclass(frozen=True)
class AlertSpec:
    """One alert: its name, expression per target profile, hold time, labels and annotations."""

    name: str
    #: The expression by profile name, roles expanded; a profile missing here has no such alert.
    exprs: Mapping[str, str]
    #: Seconds the condition must hold before the alert fires (Prometheus' ``for``).
    for_: float
    severity: str
    labels: Mapping[str, str]
    #: Annotation templates, as Prometheus expands them (``{{ $value }}``, ``{{ $labels.job }}``).
    summary: str
    description: str
    #: What the alert means in plain words (the docstring's first paragraph), for messages.
    title: str = ""
    #: A path from the root directory (``docs/runbooks/HighErrorRate.md``) or a URL.
    runbook: str | None = None
    #: The number the condition compares with (``{{threshold}}`` in the expression), for
    #: the dashboards that draw it; ``None`` when it has none.
    threshold: float | None = None
    #: Which side of ``threshold`` fires: ``"above"`` or ``"below"``.
    fires: str = "above"
    #: Targets (``database``, ``cache``, ``fraiseql``, ``prometheus``) whose outage makes
    #: this alert fire too: an alert that is the cause of that outage silences it.
    depends_on: tuple[str, ...] = ()
    #: The target this alert says is down (``DatabaseDown``: ``database``): it silences
    #: every alert that depends on that target.
    cause_of: str | None = None

    def expr_for(self, profile: str) -> str | None:
        return self.exprs.get(profile)

    def validate(self) -> None:
        """Parse every expression as Prometheus would; ``ValueError`` naming the profile and the parser's message."""
        from fraiseql_checks.promql import PromQLError, parse

        for profile, expr in sorted(self.exprs.items(), key=lambda item: (item[0] != DEFAULT_PROFILE, item[0])):
            try:
                parse(expr)
            except PromQLError as exc:
                where = f" ({profile})" if len(set(self.exprs.values())) > 1 else ""
                raise ValueError(f"alert {self.name}{where}: invalid PromQL {expr!r}: {exc.reason}") from None


@dataclasses.dataclass(frozen=True)
class InvalidAlert:
    """An ``@alert`` with wrong arguments: kept until collection, where it becomes a
    collection error naming the check (the rest of its module still collects)."""

    reason: str

    def validate(self) -> None:
        raise ValueError(self.reason)


def alert_name(function_name: str) -> str:
    """The default alert name: ``check_high_error_rate`` → ``HighErrorRate``."""
    stem = function_name.removeprefix("check_")
    return "".join(part[:1].upper() + part[1:] for part in stem.split("_") if part)


def _exprs(expr: str | Mapping[str, str]) -> dict[str, str]:
    """The expression of each profile, role placeholders expanded (``profiles.expand``).

    A string serves every profile that has a series for each role it names; a mapping
    gives each profile its own (the older way, before roles), where a role the
    profile lacks is an error: the expression was written for that profile."""
    if isinstance(expr, str):
        try:
            out = expand_per_profile(expr)
            if not out:
                lacking = "; ".join(f"{p} has no {', '.join(r)}" for p, r in missing_roles(expr).items())
                raise ValueError(f"expr: no target profile has every role it reads ({lacking})")
        except RoleError as exc:
            raise ValueError(f"expr: {exc}") from None
        return out
    if not isinstance(expr, Mapping) or not expr:
        raise ValueError(f"expr must be a PromQL string or a mapping of profile names to PromQL, got {expr!r}")
    out = {}
    for profile, text in expr.items():
        if profile not in PROFILES:
            raise ValueError(f"expr: unknown profile {profile!r} (expected one of: {', '.join(sorted(PROFILES))})")
        if not isinstance(text, str):
            raise ValueError(f"expr[{profile!r}] must be a PromQL string, got {text!r}")
        try:
            out[str(profile)] = expand(text, PROFILES[profile])
        except RoleError as exc:
            raise ValueError(f"expr[{profile!r}]: {exc}") from None
    return out


def _docstring(func: Callable[..., Any]) -> tuple[str, str]:
    """The first paragraph of the docstring, and the rest."""
    doc = inspect.getdoc(func) or ""
    first, _, rest = doc.partition("\n\n")
    return " ".join(first.split()), rest.strip()


def make_alert(
    func: Callable[..., Any],
    *,
    expr: str | Mapping[str, str],
    for_: str | float | None,
    severity: str,
    labels: Mapping[str, str] | None,
    summary: str | None,
    description: str | None,
    runbook: str | None,
    name: str | None,
    threshold: float | None = None,
    fires: str = "above",
    depends_on: Sequence[str] = (),
    cause_of: str | None = None,
) -> AlertSpec:
    """Validate what a user wrote in ``@alert(...)``; a ``ValueError`` says what is wrong."""
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}, got {severity!r}")
    alert = name or alert_name(func.__name__)
    if not _ALERT_NAME.fullmatch(alert):
        raise ValueError(f"alert name {alert!r} must match [a-zA-Z_:][a-zA-Z0-9_:]* (Prometheus' rule format)")
    checked = validate_labels(labels)
    for reserved in _RESERVED_LABELS:
        if reserved in checked:
            raise ValueError(f"labels may not set {reserved!r}" + (": use severity=" if reserved == "severity" else ""))
    hold = 0.0 if for_ is None else parse_duration(for_)
    first, rest = _docstring(func)
    if threshold is not None and (isinstance(threshold, bool) or not isinstance(threshold, int | float)):
        raise ValueError(f"threshold must be a number, got {threshold!r}")
    if fires not in ("above", "below"):
        raise ValueError(f"fires must be 'above' or 'below', got {fires!r}")
    if isinstance(depends_on, str):
        depends_on = (depends_on,)
    for target in (*depends_on, *([cause_of] if cause_of else [])):
        if target not in TARGETS:
            raise ValueError(f"unknown target {target!r} (expected one of: {', '.join(TARGETS)})")
    return AlertSpec(
        name=alert,
        exprs=_exprs(_with_threshold(expr, threshold)),
        for_=hold,
        severity=severity,
        labels=checked,
        summary=summary or first or f"{alert} is firing",
        description=description or rest or first or f"{alert} is firing",
        title=first or summary or alert,
        runbook=runbook,
        threshold=None if threshold is None else float(threshold),
        fires=fires,
        depends_on=tuple(depends_on),
        cause_of=cause_of,
    )


def _with_threshold(expr: str | Mapping[str, str], threshold: float | None) -> str | Mapping[str, str]:
    """``{{threshold}}`` in the expression replaced by the alert's threshold (one home for it)."""
    if isinstance(expr, str):
        texts: Mapping[str, str] = {"": expr}
    else:
        texts = expr
    if threshold is None:
        if any(_THRESHOLD in text for text in texts.values()):
            raise ValueError("expr uses {{threshold}} but the alert has no threshold=")
        return expr
    number = f"{threshold:g}"
    replaced = {key: text.replace(_THRESHOLD, number) for key, text in texts.items()}
    return replaced[""] if isinstance(expr, str) else replaced


def alert(
    *,
    expr: str | Mapping[str, str],
    for_: str | float | None = None,
    severity: str = "warning",
    labels: Mapping[str, str] | None = None,
    summary: str | None = None,
    description: str | None = None,
    runbook: str | None = None,
    name: str | None = None,
    threshold: float | None = None,
    fires: str = "above",
    depends_on: Sequence[str] = (),
    cause_of: str | None = None,
    interval: str | float | None = None,
    timeout: str | float | None = None,
    tags: Sequence[str] = (),
    owner: str | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare an alert condition on a ``check_*`` function (its body is the docstring).

    ``expr`` is PromQL in which FraiseQL's series are written as role placeholders
    (``{{graphql_errors}}``, ``{{query_latency.bucket}}``, ``{{http_5xx{job="api"}}}``;
    docs/alert-rules.md lists the roles), expanded for each target profile; a profile
    without a series for one of its roles has no such alert. A mapping of target
    profiles to PromQL (``{"fraiseql-v2": ..., "fraiseql-v1": ...}``) still works: a
    profile left out has no such alert. ``for_`` is how long the condition must hold
    (``"5m"``). ``summary`` and ``description`` are Prometheus annotation templates
    (default: the docstring's first paragraph and the rest). ``name`` defaults to the
    function's name in CamelCase without ``check_``. ``interval``, ``timeout``,
    ``tags`` and ``owner`` are the check's, as in ``@check``.

    The alert's facts are data the generators read: ``threshold`` (written
    ``{{threshold}}`` in ``expr``; the dashboards draw it, ``fires`` says on which
    side), ``depends_on`` (the targets whose outage makes it fire too) and
    ``cause_of`` (the target it says is down): Alertmanager's inhibition rules are
    derived from them, so an alert about the cause silences the alerts it causes.
    """

    def mark(func: Callable[..., Any]) -> Callable[..., Any]:
        if not callable(func):
            raise TypeError(f"@alert decorates a function, not {func!r}")
        spec: AlertSpec | None = None
        try:
            spec = make_alert(
                func,
                expr=expr,
                for_=for_,
                severity=severity,
                labels=labels,
                summary=summary,
                description=description,
                runbook=runbook,
                name=name,
                threshold=threshold,
                fires=fires,
                depends_on=depends_on,
                cause_of=cause_of,
            )
            check_spec = make_spec(
                interval=interval,
                timeout=timeout,
                severity=severity,
                labels=spec.labels,
                tags=(ALERT_TAG, *(t for t in tags if t != ALERT_TAG)),
                runbook=runbook,
                owner=owner,
                description=spec.title,
                alert=spec,
            )
        except ValueError as exc:
            check_spec = CheckSpec(tags=(ALERT_TAG,), alert=InvalidAlert(str(exc)))

        async def evaluate_alert(prom: PrometheusClient, config: Config) -> None:
            assert spec is not None, "an invalid @alert is a collection error and never runs"
            await evaluate(spec, prom, config)

        evaluate_alert.__name__ = func.__name__
        evaluate_alert.__qualname__ = func.__qualname__
        evaluate_alert.__module__ = func.__module__
        evaluate_alert.__doc__ = func.__doc__
        # The user's function, for its source location; the signature asks for the fixtures.
        evaluate_alert.__wrapped__ = func  # type: ignore[attr-defined]
        evaluate_alert.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            [
                inspect.Parameter("prom", inspect.Parameter.POSITIONAL_OR_KEYWORD),
                inspect.Parameter("config", inspect.Parameter.POSITIONAL_OR_KEYWORD),
            ]
        )
        setattr(evaluate_alert, SPEC_ATTR, check_spec)
        return evaluate_alert

    return mark


# ---- evaluation ------------------------------------------------------------------------


class AlertNotEvaluated(Exception):
    """Prometheus could not be asked (down, or it rejected the query), or the expression
    does not return series: the run is an error, not a firing alert."""


LabelSet = tuple[tuple[str, str], ...]


def label_set(labels: Mapping[str, str]) -> LabelSet:
    return tuple(sorted(labels.items()))


def describe_series(labels: Mapping[str, str]) -> str:
    """``name{a="1", b="2"}`` as Prometheus writes a series."""
    name = labels.get("__name__", "")
    pairs = ", ".join(f'{key}="{value}"' for key, value in sorted(labels.items()) if key != "__name__")
    return f"{name}{{{pairs}}}"


class PendingAlerts:
    """Since when each series of each ``@alert`` check has been true, kept across runs.

    A series that stops being returned starts over when it comes back, as in
    Prometheus' rule evaluation. The state is keyed by check and expression, so a
    reload that changes the expression starts afresh.
    """

    def __init__(self) -> None:
        self._since: dict[tuple[str, str], dict[LabelSet, float]] = {}

    def known(self, check_id: str, expr: str) -> bool:
        return (check_id, expr) in self._since

    def update(self, check_id: str, expr: str, active: Mapping[LabelSet, float]) -> dict[LabelSet, float]:
        """Record the series true now (with since when, if known); their since-times."""
        previous = self._since.get((check_id, expr), {})
        since = {key: min(previous.get(key, start), start) for key, start in active.items()}
        self._since[(check_id, expr)] = since
        return since


def pending_alerts(config: Config) -> PendingAlerts:
    state = config.stash.get(PENDING_KEY)
    if state is None:
        state = config.stash[PENDING_KEY] = PendingAlerts()
    return state


def continuous_since(series: Series, end: float, step: float) -> float | None:
    """When ``series`` started to be present at every step up to ``end``; ``None`` if absent at ``end``."""
    times = [at for at, value in series.points if not math.isnan(value)]
    if not times or abs(times[-1] - end) > step / 2:
        return None
    since = times[-1]
    for at in reversed(times[:-1]):
        if since - at > step * 1.5:
            break
        since = at
    return since


def lookback_step(for_: float, interval: float) -> float:
    """The step of the first run's range query: fine enough to see gaps, at most 60 points."""
    target = min(_LOOKBACK_STEP, interval)
    steps = min(_LOOKBACK_STEPS, max(1, math.ceil(for_ / target)))
    return for_ / steps


async def active_series(
    spec: AlertSpec, expr: str, prom: PrometheusClient, config: Config, now: float
) -> tuple[dict[LabelSet, Sample], dict[LabelSet, float]]:
    """The series ``expr`` returns now, and since when each has been true (as far as known)."""
    from fraiseql_checks.targets.prometheus import Vector

    run = current()
    check_id = str(getattr(run.check, "id", ""))
    state = pending_alerts(config)
    try:
        result = await prom.query(expr, time=now)
    except TargetError as exc:
        raise AlertNotEvaluated(f"{spec.name} not evaluated: {exc}") from exc
    if not isinstance(result, Vector):
        raise AlertNotEvaluated(
            f"{spec.name} not evaluated: {expr!r} returns a {type(result).__name__.lower()}, not an instant"
            " vector (an alert condition must return series)"
        )
    samples = {label_set(sample.labels): sample for sample in result}
    starts = {key: now for key in samples}
    if spec.for_ > 0 and samples and not state.known(check_id, expr):
        step = lookback_step(spec.for_, float(getattr(run.check, "interval", spec.for_)))
        try:
            history = await prom.query_range(expr, now - spec.for_, now, step)
        except TargetError as exc:
            raise AlertNotEvaluated(f"{spec.name} not evaluated: {exc}") from exc
        for series in history:
            key = label_set(series.labels)
            since = continuous_since(series, now, step)
            if key in starts and since is not None:
                starts[key] = since
    return samples, state.update(check_id, expr, starts)


def _value(value: float) -> str:
    return f"{value:.4g}" if math.isfinite(value) else str(value)


async def evaluate(spec: AlertSpec, prom: PrometheusClient, config: Config) -> None:
    """Run ``spec`` as a check: fail when a series has held for ``for_``, listing them."""
    from fraiseql_checks.core._pytest_compat import (  # pytest's rewriter: not at ``import fraiseql_checks``
        Failed,
        Skipped,
    )
    from fraiseql_checks.targets.plugin import targets_of

    profile = targets_of(config).profile.name
    expr = spec.expr_for(profile)
    if expr is None:
        raise Skipped(f"{spec.name} has no expression for {profile}: that server exports nothing it could read")
    now = round(time.time(), 3)  # Prometheus keeps milliseconds: the range query's steps land on these
    samples, since = await active_series(spec, expr, prom, config, now)
    firing = {key: s for key, s in samples.items() if now - since[key] >= spec.for_ - 0.0005}
    pending = {key: s for key, s in samples.items() if key not in firing}
    record("firing_series", len(firing))
    record("pending_series", len(pending))
    current().extra["alert"] = {
        "name": spec.name,
        "expr": expr,
        "for_seconds": spec.for_,
        "firing": [{"labels": dict(s.labels), "value": s.value, "since": since[k]} for k, s in firing.items()],
        "pending": [{"labels": dict(s.labels), "value": s.value, "since": since[k]} for k, s in pending.items()],
    }
    if not firing:
        return
    held = f", true for at least {format_duration(spec.for_)}" if spec.for_ else ""
    lines = [f"{spec.name} is firing for {len(firing)} series{held}: {spec.title}"]
    lines += [f"  {describe_series(s.labels)} = {_value(s.value)}" for _, s in sorted(firing.items())]
    for key, sample in sorted(pending.items()):
        lines.append(
            f"  pending: {describe_series(sample.labels)} = {_value(sample.value)}"
            f" (true for {format_duration(now - since[key]) or '0s'} of {format_duration(spec.for_)})"
        )
    raise Failed("\n".join(lines), pytrace=False)
