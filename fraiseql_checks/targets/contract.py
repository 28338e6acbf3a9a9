"""The metrics contract: every series an alert rule or a dashboard queries must exist on the target.

The rule files (``alerts/``) and Grafana dashboards (``dashboards/``) are read and
their PromQL parsed (``promql.py``), never grepped. FraiseQL's own series are
looked up on the server's ``/metrics`` (or in Prometheus); names that are not
FraiseQL's — recording rules (with ``:``), this tool's ``fraiseql_check_*``,
node_exporter's ``node_*`` and the like — only Prometheus can confirm, so without
one configured they are listed as unchecked.

The check (``checks/health/check_metrics_contract.py``) reads the project's own
folders; the ``contract`` command (``contract_command.py``, registered here) reads
any dashboards and rule files given on its command line, with the same lookup.
"""

from __future__ import annotations

import dataclasses
import json
import re
import threading
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fraiseql_checks.commands import Command, Commands
from fraiseql_checks.config import Parser, Setting, as_str_list, section
from fraiseql_checks.hookspec import hookimpl

if TYPE_CHECKING:
    import argparse

    from fraiseql_checks.config import Config
    from fraiseql_checks.targets.http import HTTPClient

RULE_SUFFIXES = (".yml", ".yaml")
SETTINGS = [
    Setting("rules", as_str_list, help="folders or files of Prometheus rule files (default: alerts)"),
    Setting("dashboards", as_str_list, help="folders or files of Grafana dashboard JSON (default: dashboards)"),
]


@hookimpl
def fraiseql_addoption(parser: Parser) -> None:
    parser.addsetting(Setting("metrics_contract", section(SETTINGS), {}, "where the metrics contract check reads"))


def _arguments(parser: argparse.ArgumentParser) -> None:
    from fraiseql_checks.targets.contract_command import arguments

    arguments(parser)


def _run(config: Config) -> int:
    from fraiseql_checks.targets.contract_command import run

    return run(config)


@hookimpl
def fraiseql_add_commands(commands: Commands) -> None:
    commands.add(
        Command(
            "contract",
            "list the series other dashboards and rule files query that the target does not expose",
            _arguments,
            _run,
        )
    )


@dataclasses.dataclass(frozen=True)
class Reference:
    """A series name (or a ``__name__=~`` pattern) and where it is queried."""

    name: str
    where: str
    pattern: bool = False


def is_fraiseql_series(name: str) -> bool:
    """A series the FraiseQL server itself exports (so its ``/metrics`` can confirm it)."""
    return name.startswith("fraiseql_") and not name.startswith("fraiseql_check_") and ":" not in name


def _files(root: Path, entries: Iterable[str], suffixes: tuple[str, ...]) -> Iterator[Path]:
    for entry in entries:
        path = root / entry
        if path.is_file():
            yield path
        elif path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in suffixes)


def _profile_files(root: Path, entries: Iterable[str], profile: str, suffixes: tuple[str, ...]) -> Iterator[Path]:
    """The files a target of ``profile`` uses: ``<folder>/<other profile>/`` is left out, and
    ``<folder>/<profile>/X`` replaces ``<folder>/X``, in subfolders too (``slo/X``): how
    ``fraiseql-check generate alerts``, ``slo-rules`` and ``dashboards`` lay out the
    profiles besides the default."""
    from fraiseql_checks.targets.profiles import PROFILES

    others = set(PROFILES) - {profile}
    for entry in entries:
        folder = root / entry
        if not folder.is_dir():
            yield from _files(root, [entry], suffixes)
            continue
        own = folder / profile
        for path in _files(root, [entry], suffixes):
            relative = path.relative_to(folder).parts
            if relative[0] in others or (relative[0] != profile and own.joinpath(*relative).is_file()):
                continue
            yield path


def _references(expr: str, where: str) -> list[Reference]:
    from fraiseql_checks.promql import metric_names, name_patterns

    refs = [Reference(name, where) for name in sorted(metric_names(expr))]
    refs += [Reference(pattern, where, pattern=True) for pattern in sorted(name_patterns(expr))]
    return refs


def rule_references(path: Path, relpath: str) -> list[Reference]:
    """Series referenced by the ``expr`` of every rule in a Prometheus rule file (or a PrometheusRule)."""
    import yaml

    from fraiseql_checks import yamlfile
    from fraiseql_checks.promql import PromQLError

    refs: list[Reference] = []
    try:
        documents = yamlfile.load_all(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, OSError, UnicodeDecodeError) as exc:
        raise ContractError(f"{relpath}: cannot read the rule file{yamlfile.problem(exc)}") from None
    for document in documents:
        if not isinstance(document, Mapping):
            continue
        groups = document.get("groups")
        if groups is None and isinstance(document.get("spec"), Mapping):
            groups = document["spec"].get("groups")  # a Kubernetes PrometheusRule
        for group in groups or ():
            for rule in (group or {}).get("rules") or ():
                if not isinstance(rule, Mapping) or "expr" not in rule:
                    continue
                name = rule.get("alert") or rule.get("record") or "?"
                kind = "alert" if "alert" in rule else "record"
                where = f"{relpath}: {kind} {name}"
                try:
                    refs += _references(str(rule["expr"]), where)
                except PromQLError as exc:
                    raise ContractError(f"{where}: {exc}") from None
    return refs


def _panels(node: Any) -> Iterator[Mapping[str, Any]]:
    """Every panel of a dashboard, including those nested in rows (new and old layouts)."""
    if isinstance(node, Mapping):
        for key in ("panels", "rows"):
            for child in node.get(key) or ():
                if isinstance(child, Mapping):
                    if "targets" in child:
                        yield child
                    yield from _panels(child)


def _datasource_type(datasource: Any) -> str | None:
    """The plugin type of a panel's or target's ``datasource`` (``{"type": "loki", ...}``), if it says."""
    if isinstance(datasource, Mapping) and isinstance(datasource.get("type"), str):
        return str(datasource["type"])
    return None


#: Datasource types whose ``expr`` is PromQL; ``datasource`` is Grafana's "-- Mixed --" (each target says).
_PROMQL_DATASOURCES = frozenset({"prometheus", "datasource"})


def dashboard_references(path: Path, relpath: str) -> list[Reference]:
    """Series referenced by the Prometheus queries (``targets[].expr``) of a Grafana dashboard.

    Targets of another datasource type (a Loki query's ``expr`` is LogQL) are left out."""
    from fraiseql_checks.promql import PromQLError, without_grafana_variables

    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as exc:
        raise ContractError(f"{relpath}: cannot read the dashboard: {exc}") from None
    if isinstance(document, Mapping) and isinstance(document.get("dashboard"), Mapping):
        document = document["dashboard"]  # the API's {"dashboard": ...} envelope
    refs: list[Reference] = []
    for panel in _panels(document):
        title = panel.get("title") or f"id {panel.get('id', '?')}"
        for target in panel.get("targets") or ():
            expr = target.get("expr") if isinstance(target, Mapping) else None
            if not expr:
                continue
            kind = _datasource_type(target.get("datasource")) or _datasource_type(panel.get("datasource"))
            if kind is not None and kind not in _PROMQL_DATASOURCES:
                continue
            where = f"{relpath}: panel {title!r}"
            try:
                refs += _references(without_grafana_variables(str(expr)), where)
            except PromQLError as exc:
                raise ContractError(f"{where}: {exc}") from None
    return refs


class ContractError(ValueError):
    """A rule file or dashboard cannot be read, or holds PromQL that does not parse."""


#: References read from the files, by the files' paths, sizes and times: parsed once per process.
_REFERENCES: dict[tuple[tuple[str, int, int], ...], list[Reference]] = {}
_REFERENCES_LOCK = threading.Lock()


def cached_references(config: Config) -> list[Reference]:
    """``collect_references``, parsed again only when a file changed (call it on a thread:
    the first parse of the rule and dashboard files is CPU work)."""
    settings = config.get("metrics_contract")
    files = _reference_files(config, settings)
    key = tuple((str(path), stat.st_size, stat.st_mtime_ns) for path in files for stat in [path.stat()])
    with _REFERENCES_LOCK:
        found = _REFERENCES.get(key)
        if found is None:
            found = _REFERENCES[key] = collect_references(config)
        return list(found)


def _reference_files(config: Config, settings: Mapping[str, Any]) -> list[Path]:
    from fraiseql_checks.targets.plugin import targets_of

    root, profile = config.rootdir, targets_of(config).profile.name
    return [
        *_profile_files(root, settings.get("rules") or ["alerts"], profile, RULE_SUFFIXES),
        *_profile_files(root, settings.get("dashboards") or ["dashboards"], profile, (".json",)),
    ]


def collect_references(config: Config) -> list[Reference]:
    """Every series reference in the configured rule files (those of the target's profile)
    and dashboards, with paths relative to the root."""
    from fraiseql_checks.targets.plugin import targets_of

    settings = config.get("metrics_contract")
    root = config.rootdir
    profile = targets_of(config).profile.name
    refs: list[Reference] = []
    for path in _profile_files(root, settings.get("rules") or ["alerts"], profile, RULE_SUFFIXES):
        refs += rule_references(path, config.relpath(path))
    for path in _profile_files(root, settings.get("dashboards") or ["dashboards"], profile, (".json",)):
        refs += dashboard_references(path, config.relpath(path))
    return refs


@dataclasses.dataclass
class Verdict:
    """What the contract check found: missing references, unchecked ones, and where it looked."""

    checked: list[Reference]
    missing: list[Reference]
    unchecked: list[Reference]
    sources: list[str]

    def report(self) -> str:
        lines = [
            f"{len({r.name for r in self.missing})} series queried by alert rules or dashboards "
            f"do not exist on {' and '.join(self.sources)}:"
        ]
        for name, places in by_name(self.missing).items():
            lines.append(f"  {name}  ({'; '.join(places)})")
        return "\n".join(lines)


def by_name(refs: Iterable[Reference]) -> dict[str, list[str]]:
    """The references grouped by series name: where each name is queried, in order, once each."""
    grouped: dict[str, list[str]] = {}
    for ref in refs:
        places = grouped.setdefault(ref.name, [])
        if ref.where not in places:
            places.append(ref.where)
    return grouped


def _exists(ref: Reference, available: frozenset[str]) -> bool:
    if not ref.pattern:
        return ref.name in available
    try:
        pattern = re.compile(ref.name)
    except re.error:
        return False
    return any(pattern.fullmatch(name) for name in available)


async def verify(config: Config, http: HTTPClient, refs: list[Reference]) -> Verdict:
    """Look every reference up on the FraiseQL target's ``/metrics`` and in Prometheus, as configured."""
    from fraiseql_checks.targets.fraiseql import FraiseQLClient
    from fraiseql_checks.targets.plugin import not_configured, targets_of
    from fraiseql_checks.targets.prometheus import PrometheusClient

    targets = targets_of(config)
    target = targets.fraiseql
    metrics_usable = target is not None and (target.metrics_token or not target.profile.metrics_need_token)
    if not metrics_usable and targets.prometheus_url is None:
        if target is not None:
            not_configured(config, "the FraiseQL metrics token", "fraiseql.metrics_token", "FRAISEQL_METRICS_TOKEN")
        not_configured(config, "FraiseQL or Prometheus", "fraiseql.url", "FRAISEQL_URL")
    sources: list[str] = []
    from_target: frozenset[str] | None = None
    from_prometheus: frozenset[str] | None = None
    if target is not None and metrics_usable:
        from_target = (await FraiseQLClient(config, target, http).metrics()).series_names
        sources.append(target.url + target.metrics_path)
    if targets.prometheus_url is not None:
        prometheus = PrometheusClient(http, targets.prometheus_url, targets.prometheus_token)
        from_prometheus = await prometheus.series_names()
        sources.append(f"Prometheus {targets.prometheus_url}")
    checked: list[Reference] = []
    missing: list[Reference] = []
    unchecked: list[Reference] = []
    for ref in refs:
        if from_target is not None and (ref.pattern or is_fraiseql_series(ref.name)):
            available = from_target if from_prometheus is None else from_target | from_prometheus
        elif from_prometheus is not None:
            available = from_prometheus
        else:
            unchecked.append(ref)
            continue
        checked.append(ref)
        if not _exists(ref, available):
            missing.append(ref)
    return Verdict(checked, missing, unchecked, sources)
