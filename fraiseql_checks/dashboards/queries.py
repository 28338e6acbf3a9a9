"""PromQL for the dashboards: selectors, the names they may use, and this tool's SLO series.

Every metric name a dashboard queries comes from one of two places: the target
profile's roles (``profiles.py``: the series that answers "GraphQL errors" on that
FraiseQL version) or this tool's own definitions (``metrics.py``, the SLO gauges
included). ``FraiseQLNames`` refuses a name the profile does not emit, so a
dashboard cannot be built over a series nobody exports.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from fraiseql_checks import metrics as m
from fraiseql_checks.promql import promql_string, regex_escape
from fraiseql_checks.targets.profiles import Matcher, Profile

RATE = "$__rate_interval"
SLO_OBJECTIVE = m.SLO_OBJECTIVE
SLO_SLI = m.SLO_SLI
SLO_BUDGET = m.SLO_BUDGET
SLO_BURN = m.SLO_BURN


def own_metric_names() -> frozenset[str]:
    """Every family and series name this tool exports (a histogram's name and its three series)."""
    return frozenset(name for metric in m.ALL for name in (metric.name, *metric.series_names))


@dataclasses.dataclass(frozen=True)
class Scope:
    """The template variables that filter a group of series (``job=~"$job"``...)."""

    job: str = "job"
    instance: str | None = "instance"

    def matchers(self) -> list[str]:
        found = [f'job=~"${self.job}"']
        if self.instance:
            found.append(f'instance=~"${self.instance}"')
        return found


@dataclasses.dataclass(frozen=True)
class Re:
    """A label matched by a regular expression (``=~``), or not matched (``!~``) with ``negate``."""

    pattern: str
    negate: bool = False


def select(metric: str, scope: Scope | None = None, *matchers: Matcher, **labels: str | Re) -> str:
    """``metric{job=~"$job",instance=~"$instance",status=~"5..",name="value"}``: the scope's
    variables, a role's ``matchers``, then ``labels`` (a string matches exactly, a ``Re`` as a
    regular expression)."""
    found = scope.matchers() if scope is not None else []
    found += [matcher.promql() for matcher in matchers]
    for name, value in labels.items():
        if isinstance(value, Re):
            found.append(f"{name}{'!~' if value.negate else '=~'}{promql_string(value.pattern)}")
        else:
            found.append(f"{name}={promql_string(value)}")
    return f"{metric}{{{','.join(found)}}}" if found else metric


def one_of(values: Iterable[str]) -> str:
    """A regular expression matching exactly ``values``."""
    return "|".join(regex_escape(value) for value in values)


class FraiseQLNames:
    """The metric names a FraiseQL profile emits; asking for another one is a bug in a builder."""

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self._series = profile.series_names()

    def __call__(self, name: str) -> str:
        if name not in self._series:
            raise KeyError(f"{self.profile.name} does not emit {name!r}")
        return name


@dataclasses.dataclass(frozen=True)
class CheckValue:
    """A value a shipped check records (``fraiseql_check_value{name=...}``), and which check records it."""

    name: str
    #: The check function that records it (its file and parameters may vary).
    check: str

    def select(self, scope: Scope | None) -> str:
        return select(m.VALUE.name, scope, name=self.name, check=check_function(self.check))


def check_function(name: str) -> Re:
    """The ``check`` label of a check function's runs, whatever its file and parameters."""
    return Re(f".*::{regex_escape(name)}(\\[.*)?")
