"""What the six seed dashboards share: the profile's roles, the two scopes, PromQL shorthands.

The seed planned six dashboards of 54 panels (Operations Overview, Cache
Performance, Database Health, Error Analysis, User Activity, Compliance & Audit).
Each is built for a target profile: FraiseQL's own series where the server
emits them (filtered by ``$job``/``$instance``, the FraiseQL server's), and the
values this tool's checks record where it does not (filtered by ``$watcher``,
the job of ``fraiseql-check --watch``). ``docs/dashboards.md`` says, panel by
panel, where a seed panel shows the nearest true thing instead.

Builders name FraiseQL's series by role (``s.rate("graphql_errors")``) and choose a
panel by asking whether the profile has a role (``s.has("pool_waiting")``), never
which version it is: a profile without the roles a panel needs has no such panel.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterable, Mapping, Sequence

from fraiseql_checks import metrics as m
from fraiseql_checks.alerting.alerts import AlertSpec
from fraiseql_checks.dashboards.model import (
    Dashboard,
    Panel,
    Row,
    Variable,
    all_dashboards_link,
    datasource_variable,
    label_variables,
    slug,
)
from fraiseql_checks.dashboards.queries import RATE, CheckValue, FraiseQLNames, Re, Scope, check_function, select
from fraiseql_checks.targets.profiles import Profile, Series

SERVER = Scope("job", "instance")
WATCHER = Scope("watcher", None)


@dataclasses.dataclass(frozen=True)
class Seed:
    """The context a seed dashboard is built in: the profile, and the thresholds the checks use."""

    profile: Profile
    #: ``config.threshold``: the thresholds the shipped checks assert, with the config's overrides.
    threshold: Callable[[str, float], float] = lambda name, default: default
    #: The ``@alert`` checks collected, by alert name: panels draw their thresholds.
    alerts: Mapping[str, AlertSpec] = dataclasses.field(default_factory=dict)

    def alert_line(self, name: str, unit: str = "") -> tuple[tuple[float, ...], str, str]:
        """How a panel of the series alert ``name`` reads draws it: its threshold (none when the
        alert is not collected or has none), the side that fires, and a sentence saying so."""
        spec = self.alerts.get(name)
        if spec is None or spec.threshold is None:
            return (), "above", ""
        value = spec.threshold
        shown = f"{value * 100:g}%" if unit == "percentunit" else f"{value:g}s" if unit == "s" else f"{value:g}"
        return (value,), spec.fires, f"The {name} alert fires {spec.fires} {shown}."

    @functools.cached_property
    def names(self) -> FraiseQLNames:
        """The profile's names, made once (``series_names`` builds a set)."""
        return FraiseQLNames(self.profile)

    def has(self, role: str) -> bool:
        """Whether the profile has a series for ``role`` (``profiles.ROLES``)."""
        return self.profile.has(role)

    def series(self, role: str) -> Series:
        """The profile's series for ``role``; ``MissingRole`` if it has none (ask ``has`` first)."""
        return self.profile.series(role)

    def first(self, *roles: str) -> str | None:
        """The first of ``roles`` the profile has: the panel's preferred series, then its fallbacks."""
        return next((role for role in roles if self.has(role)), None)

    def fq(self, role: str, part: str | None = None, **labels: str | Re) -> str:
        """The series of ``role`` (a histogram's ``part``), with its matchers, in the server's scope."""
        series = self.series(role)
        return select(self.names(series.sample(part)), SERVER, *series.matchers, **labels)

    def rate(self, role: str, by: str = "", window: str = RATE, offset: str = "", **labels: str | Re) -> str:
        """``sum [by (...)] (rate(series[window] [offset ...]))``."""
        return self._sum("rate", role, by, window, offset, labels)

    def increase(self, role: str, by: str = "", window: str = "$__range", offset: str = "", **labels: str | Re) -> str:
        """``sum [by (...)] (increase(series[window] [offset ...]))``."""
        return self._sum("increase", role, by, window, offset, labels)

    def _sum(self, function: str, role: str, by: str, window: str, offset: str, labels: dict[str, str | Re]) -> str:
        grouping = f" by ({by})" if by else ""
        shift = f" offset {offset}" if offset else ""
        return f"sum{grouping} ({function}({self.fq(role, None, **labels)}[{window}]{shift}))"

    def total(self, role: str) -> str:
        """``sum(series)``: a gauge summed over the instances in scope."""
        return f"sum({self.fq(role)})"

    def quantile(self, q: float, histogram: str, by: str = "") -> str:
        """``histogram_quantile`` of a histogram role's buckets."""
        extra = f"{by}, " if by else ""
        bucket = self.fq(histogram, "bucket")
        return f"histogram_quantile({q:g}, sum by ({extra}le) (rate({bucket}[{RATE}])))"

    def heatmap(self, histogram: str) -> str:
        """The bucket rates of a histogram role, for a heatmap."""
        return f"sum by (le) (rate({self.fq(histogram, 'bucket')}[{RATE}]))"

    def value(self, name: str, check: str) -> str:
        """A value a shipped check records, in the watcher's scope."""
        return CheckValue(name, check).select(WATCHER)

    def values_of(self, check: str) -> str:
        """Every value a shipped check records, whatever their names, in the watcher's scope."""
        return select(m.VALUE.name, WATCHER, check=check_function(check))

    def own(self, metric: m.Metric, **labels: str | Re) -> str:
        """One of this tool's series, in the watcher's scope."""
        return select(metric.name, WATCHER, **labels)

    def variables(self, anchor: str) -> tuple[Variable, ...]:
        """The data source, the FraiseQL server's job and instance (over the role ``anchor``'s
        metric), the watcher's job."""
        return (
            datasource_variable(),
            *label_variables(self.names(self.series(anchor).sample()), what="the FraiseQL server"),
            Variable(
                "watcher",
                "Checks job",
                query=f"label_values({m.UP.name}, job)",
                description="Prometheus job of fraiseql-check --watch (the values checks record)",
            ),
        )

    def dashboard(self, title: str, rows: Sequence[Row], description: str, anchor: str) -> Dashboard:
        return Dashboard(
            title=f"FraiseQL: {title}",
            identity=f"seed/{slug(title)}",
            rows=tuple(rows),
            variables=self.variables(anchor),
            tags=("fraiseql", "seed", self.profile.name),
            description=(
                f"{description} FraiseQL profile {self.profile.name}. Generated by "
                "`fraiseql-check generate dashboards`; docs/dashboards.md explains every panel. "
                "Regenerate, do not edit."
            ),
            links=(all_dashboards_link(),),
        )


def row(title: str, *panels: Panel | None) -> Row:
    """A row of the panels the profile could build (``None``: it lacks the roles)."""
    return Row(title, tuple(panel for panel in panels if panel is not None))


def legend(labels: Iterable[str]) -> str:
    """``{{a}} {{b}}``: a series' legend from its labels."""
    return " ".join(f"{{{{{label}}}}}" for label in labels)


def ratio(numerator: str, denominator: str) -> str:
    return f"{numerator} / {denominator}"


def hit_ratio(hits: str, misses: str) -> str:
    """``hits / (hits + misses)`` of two rate expressions."""
    return f"{hits} / ({hits} + {misses})"
