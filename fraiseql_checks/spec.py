"""What a check declares about itself: the ``@check(...)`` decorator and its metadata."""

from __future__ import annotations

import dataclasses
import inspect
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar, overload

from fraiseql_checks.durations import positive_duration

SEVERITIES = ("critical", "warning", "info")
#: The targets fixtures reach and checks depend on (``@fixture(target=...)``,
#: ``@check(depends_on=...)``): the names the ``depends_on`` labels, Alertmanager's
#: inhibition and the notifications' root causes use.
TARGETS = ("fraiseql", "database", "cache", "prometheus")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
#: The attribute ``@check`` sets on the function it decorates.
SPEC_ATTR = "__fraiseql_check__"

F = TypeVar("F", bound=Callable[..., Any])


@dataclasses.dataclass(frozen=True)
class CheckSpec:
    """Metadata of one check function. ``None`` means "use the configured default"."""

    interval: float | None = None
    timeout: float | None = None
    severity: str | None = None
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)
    tags: tuple[str, ...] = ()
    runbook: str | None = None
    owner: str | None = None
    description: str | None = None
    #: Service level objective such as ``"99.9% / 30d"`` (read by the SLO plugin).
    slo: str | None = None
    #: Consecutive failing runs before the state turns failing (watch mode).
    failure_threshold: int | None = None
    #: Consecutive passing runs before a failing state recovers (watch mode).
    success_threshold: int | None = None
    #: ``(count, seconds)``: failing after ``count`` failing runs within ``seconds``
    #: (watch mode; instead of ``failure_threshold``).
    failures_within: tuple[int, float] | None = None
    #: Dashboard hints, e.g. ``{"unit": "percent", "thresholds": [85, 95]}``.
    panel: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    #: Set by ``@alert``: the alert definition this check evaluates.
    alert: Any = None
    #: Targets the check depends on beyond those its fixtures reach (``TARGETS``):
    #: while one is down, the check's failure is blamed on it.
    depends_on: tuple[str, ...] = ()
    #: Receivers to notify, by name, instead of what the routes say (watch mode).
    notify: tuple[str, ...] | None = None

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["labels"] = dict(self.labels)
        data["tags"] = list(self.tags)
        data["panel"] = dict(self.panel)
        data["depends_on"] = list(self.depends_on)
        data["notify"] = None if self.notify is None else list(self.notify)
        data.pop("alert")
        return data


def validate_labels(labels: Mapping[str, str] | None) -> dict[str, str]:
    """Labels become Prometheus labels later, so their names must be valid ones."""
    out: dict[str, str] = {}
    for name, value in (labels or {}).items():
        if not isinstance(name, str) or not _LABEL_NAME.fullmatch(name) or name.startswith("__"):
            raise ValueError(f"label name {name!r} is not a valid Prometheus label name")
        out[name] = str(value)
    return out


def make_spec(
    *,
    interval: str | float | None = None,
    timeout: str | float | None = None,
    severity: str | None = None,
    labels: Mapping[str, str] | None = None,
    tags: Sequence[str] = (),
    runbook: str | None = None,
    owner: str | None = None,
    description: str | None = None,
    slo: str | None = None,
    failure_threshold: int | None = None,
    success_threshold: int | None = None,
    failures_within: tuple[int, str | float] | None = None,
    panel: Mapping[str, Any] | None = None,
    alert: Any = None,
    depends_on: Sequence[str] = (),
    notify: Sequence[str] | None = None,
) -> CheckSpec:
    """Validate what a user wrote in ``@check(...)``; a ``ValueError`` says what is wrong."""
    if severity is not None and severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}, got {severity!r}")
    if isinstance(tags, str):
        tags = (tags,)
    for value, name in ((failure_threshold, "failure_threshold"), (success_threshold, "success_threshold")):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise ValueError(f"{name} must be a whole number of at least 1, got {value!r}")
    depends = _names(depends_on, "depends_on")
    unknown = [target for target in depends if target not in TARGETS]
    if unknown:
        raise ValueError(f"depends_on: unknown target {unknown[0]!r} (expected one of: {', '.join(TARGETS)})")
    receivers = None if notify is None else _names(notify, "notify")
    within = None
    if failures_within is not None:
        if failure_threshold is not None:
            raise ValueError("give failure_threshold or failures_within, not both")
        within = parse_failures_within(failures_within)
    return CheckSpec(
        interval=None if interval is None else _positive(interval, "interval"),
        timeout=None if timeout is None else _positive(timeout, "timeout"),
        severity=severity,
        labels=validate_labels(labels),
        tags=tuple(str(tag) for tag in tags),
        runbook=runbook,
        owner=owner,
        description=description,
        slo=slo,
        failure_threshold=failure_threshold,
        success_threshold=success_threshold,
        failures_within=within,
        panel=dict(panel or {}),
        alert=alert,
        depends_on=depends,
        notify=receivers,
    )


def _names(value: str | Sequence[str], what: str) -> tuple[str, ...]:
    """A name or a list of names, as a tuple of non-empty strings."""
    names = (value,) if isinstance(value, str) else tuple(value)
    if not all(isinstance(name, str) and name for name in names):
        raise ValueError(f"{what} must be a name or a list of names, got {value!r}")
    return names


def parse_failures_within(value: Any) -> tuple[int, float]:
    """``(3, "5m")``: three failing runs within five minutes."""
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ValueError(f"failures_within must be (count, window) such as (3, '5m'), got {value!r}")
    count, window = value
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise ValueError(f"failures_within: the count must be a whole number of at least 1, got {count!r}")
    return count, _positive(window, "failures_within window")


def _positive(value: str | float, name: str) -> float:
    """A duration longer than zero, finite and at most ``MAX_DAYS``, as the config's are."""
    try:
        return positive_duration(value)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None


@overload
def check(func: F) -> F: ...


@overload
def check(
    *,
    interval: str | float | None = ...,
    timeout: str | float | None = ...,
    severity: str | None = ...,
    labels: Mapping[str, str] | None = ...,
    tags: Sequence[str] = ...,
    runbook: str | None = ...,
    owner: str | None = ...,
    description: str | None = ...,
    slo: str | None = ...,
    failure_threshold: int | None = ...,
    success_threshold: int | None = ...,
    failures_within: tuple[int, str | float] | None = ...,
    panel: Mapping[str, Any] | None = ...,
    depends_on: Sequence[str] = ...,
    notify: Sequence[str] | None = ...,
) -> Callable[[F], F]: ...


def check(func: Any = None, **metadata: Any) -> Any:
    """Mark a function as a check and attach its metadata.

    ``@check`` alone works too; a function named ``check_*`` in a ``check_*.py``
    file is a check even without it. The docstring is the default description.
    """
    spec = make_spec(**metadata)

    def mark(fn: F) -> F:
        if not callable(fn):
            raise TypeError(f"@check decorates a function, not {fn!r}")
        setattr(fn, SPEC_ATTR, spec)
        return fn

    if func is not None:
        return mark(func)
    return mark


def spec_of(func: Callable[..., Any]) -> CheckSpec | None:
    """The ``@check`` metadata of ``func``, if it has any."""
    spec = getattr(func, SPEC_ATTR, None)
    return spec if isinstance(spec, CheckSpec) else None


def describe(func: Callable[..., Any], spec: CheckSpec | None) -> str:
    """The description: the spec's, else the docstring's first paragraph."""
    if spec is not None and spec.description:
        return spec.description
    doc = inspect.getdoc(func) or ""
    return doc.split("\n\n", 1)[0].replace("\n", " ").strip()
