"""A small model of a Grafana dashboard (rows, panels, queries, variables, links) and its JSON.

Builders describe what a dashboard shows; ``Dashboard.render()`` lays the panels
out on Grafana's 24-column grid, numbers them, and writes the JSON Grafana's
dashboard schema describes. Every query goes to the dashboard's ``datasource``
variable, never to a named data source, and the uid derives from the dashboard's
identity, so regenerating a dashboard changes nothing and pushing it again
updates it in place.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import Any

#: Grafana 11.0's dashboard schema version; newer Grafanas migrate it on load.
SCHEMA_VERSION = 39
GRID_WIDTH = 24
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
#: The tag every generated dashboard carries; the dashboards link to each other through it.
TAG = "fraiseql-checks"

GREEN, YELLOW, ORANGE, RED = "green", "yellow", "orange", "red"
_SLUG = re.compile(r"[^a-z0-9]+")


def slug(text: str) -> str:
    """``"Compliance & Audit"`` → ``"compliance-audit"``."""
    return _SLUG.sub("-", text.lower()).strip("-") or "dashboard"


def stable_uid(identity: str) -> str:
    """A Grafana uid (at most 40 characters) that only ``identity`` decides."""
    digest = hashlib.sha256(identity.encode()).hexdigest()[:8]
    return f"fqc-{slug(identity)[:27].strip('-')}-{digest}"


@dataclasses.dataclass(frozen=True)
class Threshold:
    """From ``value`` up (``None``: from minus infinity), the panel shows ``color``."""

    value: float | None
    color: str


def thresholds_for(limits: Sequence[float], bad: str = "above") -> tuple[Threshold, ...]:
    """Colour steps for the limits a check asserts: green on the good side, red past the last limit.

    ``bad="above"``: values at or above the limits are bad (``[85, 95]``: green,
    orange from 85, red from 95). ``bad="below"``: values under the limits are bad
    (``[0.15]``: red below 0.15, green from it).
    """
    ordered = sorted(float(v) for v in limits)
    if not ordered:
        return ()
    middle = [YELLOW, ORANGE] if len(ordered) > 2 else [ORANGE]
    if bad == "above":
        colors = [*(middle * len(ordered))[: len(ordered) - 1], RED]
        return (Threshold(None, GREEN), *(Threshold(v, c) for v, c in zip(ordered, colors, strict=True)))
    colors = [*(list(reversed(middle)) * len(ordered))[: len(ordered) - 1], GREEN]
    return (Threshold(None, RED), *(Threshold(v, c) for v, c in zip(ordered, colors, strict=True)))


@dataclasses.dataclass(frozen=True)
class Target:
    """One PromQL query of a panel."""

    expr: str
    legend: str = ""
    #: ``time_series`` (graphs), ``table`` (tables) or ``heatmap`` (bucket counts by ``le``).
    format: str = "time_series"
    #: Only the latest value (stats, tables), not a range.
    instant: bool = False
    #: Minimum step, e.g. ``"1h"`` for hourly bars.
    interval: str = ""


@dataclasses.dataclass(frozen=True)
class Link:
    """A link: to a URL (``kind="link"``) or to the dashboards carrying ``tags``."""

    title: str
    url: str = ""
    kind: str = "link"
    tags: tuple[str, ...] = ()
    tooltip: str = ""
    as_dropdown: bool = False

    def render(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "asDropdown": self.as_dropdown,
            "icon": "external link" if self.kind == "link" else "dashboard",
            # the dashboards' variables mean different jobs, so only the time range carries over
            "includeVars": False,
            "keepTime": self.kind == "dashboards",
            "tags": list(self.tags),
            "targetBlank": self.kind == "link",
            "title": self.title,
            "tooltip": self.tooltip,
            "type": self.kind,
        }
        if self.kind == "link":
            data["url"] = self.url
        return data


@dataclasses.dataclass(frozen=True)
class Panel:
    """A visualisation: its kind (``timeseries``, ``stat``, ``table``, ...), queries and display."""

    title: str
    kind: str
    targets: tuple[Target, ...]
    description: str = ""
    unit: str = ""
    thresholds: tuple[Threshold, ...] = ()
    #: Draw the thresholds on a graph (as dashed lines), not only colour stats by them.
    show_thresholds: bool = True
    min: float | None = None
    max: float | None = None
    decimals: int | None = None
    #: Value → (text, colour), e.g. ``{"1": ("passing", "green")}``.
    mappings: Mapping[str, tuple[str, str]] = dataclasses.field(default_factory=dict)
    no_value: str = ""
    links: tuple[Link, ...] = ()
    #: Links on every value, with Grafana's ``${__field.labels.NAME}`` placeholders.
    data_links: tuple[Link, ...] = ()
    width: int = 12
    height: int = 8
    #: ``bars`` (bar chart over time) or ``line`` for timeseries; ``stack`` stacks them.
    draw: str = "line"
    stack: bool = False
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def render(self, panel_id: int, x: int, y: int) -> dict[str, Any]:
        defaults: dict[str, Any] = {}
        if self.unit:
            defaults["unit"] = self.unit
        if self.min is not None:
            defaults["min"] = self.min
        if self.max is not None:
            defaults["max"] = self.max
        if self.decimals is not None:
            defaults["decimals"] = self.decimals
        if self.no_value:
            defaults["noValue"] = self.no_value
        if self.thresholds:
            defaults["thresholds"] = {
                "mode": "absolute",
                "steps": [{"color": t.color, "value": _number(t.value)} for t in self.thresholds],
            }
            if self.kind == "stat":
                defaults["color"] = {"mode": "thresholds"}
        if self.mappings:
            defaults["mappings"] = [
                {
                    "type": "value",
                    "options": {
                        value: {"text": text, "color": color, "index": index}
                        for index, (value, (text, color)) in enumerate(self.mappings.items())
                    },
                }
            ]
        if self.data_links:
            defaults["links"] = [
                {"title": link.title, "url": link.url, "targetBlank": True} for link in self.data_links
            ]
        custom = self._custom()
        if custom:
            defaults["custom"] = custom
        panel: dict[str, Any] = {
            "datasource": dict(DATASOURCE),
            "fieldConfig": {"defaults": defaults, "overrides": []},
            "gridPos": {"h": self.height, "w": self.width, "x": x, "y": y},
            "id": panel_id,
            "options": {**_OPTIONS.get(self.kind, {}), **self.options},
            "targets": [self._target(target, index) for index, target in enumerate(self.targets)],
            "title": self.title,
            "type": self.kind,
        }
        if self.description:
            panel["description"] = self.description
        if self.links:
            panel["links"] = [link.render() for link in self.links]
        if self.kind == "table":
            panel["transformations"] = [{"id": "organize", "options": {"excludeByName": {"Time": True}}}]
        return panel

    def _custom(self) -> dict[str, Any]:
        if self.kind != "timeseries":
            return {}
        custom: dict[str, Any] = {"drawStyle": self.draw, "fillOpacity": 60 if self.draw == "bars" else 10}
        if self.stack:
            custom["stacking"] = {"group": "A", "mode": "normal"}
        if self.thresholds and self.show_thresholds:
            custom["thresholdsStyle"] = {"mode": "dashed"}
        return custom

    @staticmethod
    def _target(target: Target, index: int) -> dict[str, Any]:
        data: dict[str, Any] = {
            "datasource": dict(DATASOURCE),
            "expr": target.expr,
            "format": target.format,
            "instant": target.instant,
            "range": not target.instant,
            "refId": _ref_id(index),
        }
        if target.legend:
            data["legendFormat"] = target.legend
        if target.interval:
            data["interval"] = target.interval
        return data


def _number(value: float | None) -> float | int | None:
    """Whole numbers as integers, so a limit of 10 reads ``10`` in the JSON, not ``10.0``."""
    return int(value) if value is not None and float(value).is_integer() else value


def _ref_id(index: int) -> str:
    """``A``..``Z``, then ``AA``, ``AB``... as Grafana names queries."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


_LEGEND = {"displayMode": "list", "placement": "bottom", "showLegend": True}
_REDUCE_LAST = {"calcs": ["lastNotNull"], "fields": "", "values": False}
_OPTIONS: dict[str, dict[str, Any]] = {
    "timeseries": {"legend": _LEGEND, "tooltip": {"mode": "multi", "sort": "desc"}},
    "stat": {
        "colorMode": "background",
        "graphMode": "none",
        "justifyMode": "auto",
        "orientation": "auto",
        "reduceOptions": _REDUCE_LAST,
        "textMode": "value",
    },
    "gauge": {"reduceOptions": _REDUCE_LAST, "showThresholdLabels": False, "showThresholdMarkers": True},
    "bargauge": {"displayMode": "gradient", "orientation": "horizontal", "reduceOptions": _REDUCE_LAST},
    "piechart": {"legend": _LEGEND, "pieType": "donut", "reduceOptions": _REDUCE_LAST},
    "table": {"showHeader": True},
    "heatmap": {"calculate": False, "yAxis": {"unit": "s"}, "cellGap": 1},
}


@dataclasses.dataclass(frozen=True)
class Row:
    """A titled row of panels; panels flow left to right and wrap at the grid's width."""

    title: str
    panels: tuple[Panel, ...]
    collapsed: bool = False


@dataclasses.dataclass(frozen=True)
class Variable:
    """A template variable: the data source picker, or label values of a metric."""

    name: str
    label: str
    kind: str = "query"
    query: str = ""
    description: str = ""

    def render(self) -> dict[str, Any]:
        if self.kind == "datasource":
            return {
                "description": self.description,
                "hide": 0,
                "includeAll": False,
                "label": self.label,
                "multi": False,
                "name": self.name,
                "options": [],
                "query": self.query,
                "refresh": 1,
                "regex": "",
                "type": "datasource",
            }
        return {
            "allValue": ".*",
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
            "datasource": dict(DATASOURCE),
            "description": self.description,
            "hide": 0,
            "includeAll": True,
            "label": self.label,
            "multi": True,
            "name": self.name,
            "options": [],
            "query": self.query,
            "refresh": 2,
            "regex": "",
            "sort": 1,
            "type": self.kind,
        }


def datasource_variable() -> Variable:
    return Variable(
        "datasource", "Prometheus", kind="datasource", query="prometheus", description="Prometheus to query"
    )


def label_variables(metric: str, job: str = "job", instance: str = "instance", what: str = "") -> tuple[Variable, ...]:
    """``job`` and ``instance`` variables over the series of ``metric`` (the second filtered by the first)."""
    of = f" of {what}" if what else ""
    return (
        Variable(job, "Job", query=f"label_values({metric}, job)", description=f"Prometheus job{of}"),
        Variable(
            instance,
            "Instance",
            query=f'label_values({metric}{{job=~"${job}"}}, instance)',
            description=f"scrape targets{of}",
        ),
    )


@dataclasses.dataclass(frozen=True)
class Dashboard:
    """A dashboard: title, identity (its uid comes from it), rows, variables and links."""

    title: str
    identity: str
    rows: tuple[Row, ...]
    variables: tuple[Variable, ...]
    tags: tuple[str, ...] = ()
    description: str = ""
    links: tuple[Link, ...] = ()
    refresh: str = "1m"
    time_from: str = "now-6h"

    @property
    def uid(self) -> str:
        return stable_uid(self.identity)

    def render(self) -> dict[str, Any]:
        """The dashboard as Grafana's JSON model (without ``id`` and ``version``, which Grafana keeps)."""
        rendered: list[dict[str, Any]] = []
        panel_id = 0
        y = 0
        for row in self.rows:
            panel_id += 1
            row_panel: dict[str, Any] = {
                "collapsed": row.collapsed,
                "gridPos": {"h": 1, "w": GRID_WIDTH, "x": 0, "y": y},
                "id": panel_id,
                "panels": [],
                "title": row.title,
                "type": "row",
            }
            rendered.append(row_panel)
            y += 1
            x = 0
            line_height = 0
            children: list[dict[str, Any]] = []
            for panel in row.panels:
                width = min(panel.width, GRID_WIDTH)
                if x + width > GRID_WIDTH:
                    x, y, line_height = 0, y + line_height, 0
                panel_id += 1
                children.append(panel.render(panel_id, x, y))
                x += width
                line_height = max(line_height, panel.height)
            y += line_height
            if row.collapsed:
                row_panel["panels"] = children
            else:
                rendered.extend(children)
        tags = sorted({TAG, *self.tags})
        return {
            "annotations": {"list": []},
            "description": self.description,
            "editable": False,
            "graphTooltip": 1,
            "links": [link.render() for link in self.links],
            "panels": rendered,
            "refresh": self.refresh,
            "schemaVersion": SCHEMA_VERSION,
            "tags": tags,
            "templating": {"list": [variable.render() for variable in self.variables]},
            "time": {"from": self.time_from, "to": "now"},
            "timepicker": {},
            "timezone": "browser",
            "title": self.title,
            "uid": self.uid,
        }

    def to_json(self) -> str:
        """The JSON text written to ``dashboards/``: sorted keys, two-space indent, a final newline."""
        return to_json(self.render())


def to_json(document: Mapping[str, Any]) -> str:
    """``json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False)`` plus a newline, byte for byte,
    by orjson: the standard library's encoder gives up its C speed-up when indenting."""
    import orjson

    return orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode() + "\n"


def all_dashboards_link() -> Link:
    """The dropdown, on every generated dashboard, of every other one (by their shared tag)."""
    return Link(
        "FraiseQL dashboards",
        kind="dashboards",
        tags=(TAG,),
        as_dropdown=True,
        tooltip="every dashboard fraiseql-check generates",
    )
