"""Reading SLO definitions: ``@check(slo=...)``, ``slos.yaml``, OpenSLO v1 and Sloth specs.

A file may hold several YAML documents; each is recognised by its header:

- ``apiVersion: openslo/v1`` — OpenSLO: ``kind: SLO`` with a ``ratioMetric``
  indicator (inline or an ``indicatorRef`` to a ``kind: SLI`` in the same files);
  other kinds (``Service``, ``AlertPolicy``...) are read past;
- ``version: prometheus/v1`` — a Sloth spec (``events`` or ``raw`` SLIs);
- ``slos:`` — this tool's own format (see ``docs/slo.md``).

A query may name FraiseQL's series by role (``{{graphql_errors}}``, ``profiles.py``),
beside the ``{{window}}`` where its range goes: such an SLO becomes one SLO per
target profile that has a series for each role, tied to that profile, with the
profile's series in its queries (``per_profile``).

Anything wrong raises ``SLOError`` naming the file, the SLO and what is wrong.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fraiseql_checks.metrictypes import NAME, Kind, family_name
from fraiseql_checks.promql import PromQLError, parse
from fraiseql_checks.slo.model import (
    SLI,
    SLO,
    WINDOW_PLACEHOLDER,
    Alerting,
    CheckSLI,
    LatencySLI,
    Objective,
    Period,
    RatioSLI,
    SLOError,
)
from fraiseql_checks.targets.profiles import (
    PROFILES,
    MissingRole,
    RoleError,
    expand,
    histogram_reference,
    references,
)

if TYPE_CHECKING:
    from fraiseql_checks.checks import Check

#: Looked for in the root directory when the config names no ``slo_files``.
DEFAULT_FILES = ("slos.yaml", "slos.yml")
DEFAULT_PERIOD = "30d"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_CHECK_SLO = re.compile(r"^\s*(?P<objective>[0-9.]+\s*%?)\s*(?:/\s*(?P<period>.+?))?\s*$")


class _Where:
    """Builds errors for one SLO of one file."""

    def __init__(self, source: str, slo: str | None = None) -> None:
        self.source, self.slo = source, slo

    def error(self, what: str) -> SLOError:
        return SLOError(self.source, self.slo, what)


def _labels(where: _Where, value: Any) -> dict[str, str]:
    from fraiseql_checks.spec import validate_labels

    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise where.error(f"labels must be a mapping of label names to values, got {value!r}")
    try:
        return validate_labels({str(k): str(v) for k, v in value.items()})
    except ValueError as exc:
        raise where.error(str(exc)) from None


def _mapping(where: _Where, value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise where.error(f"{what} must be a mapping, got {type(value).__name__}")
    return value


def _text(where: _Where, value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise where.error(f"{what} must be a non-empty string, got {value!r}")
    return value.strip()


def _query(where: _Where, value: Any, what: str, *, needs_window: bool = True) -> str:
    """A query with its ``{{window}}``; one with role placeholders is parsed once expanded (``per_profile``)."""
    query = _text(where, value, what)
    if needs_window and not WINDOW_PLACEHOLDER.search(query):
        raise where.error(f"{what} has no {{{{window}}}} placeholder where its range goes: {query!r}")
    try:
        if references(query):
            return query
    except RoleError as exc:
        raise where.error(f"{what}: {exc}") from None
    try:
        parse(WINDOW_PLACEHOLDER.sub("5m", query))
    except PromQLError as exc:
        raise where.error(f"{what}: {exc.reason} in {query!r}") from None
    return query


def _objective(where: _Where, value: Any) -> Objective:
    if value is None:
        raise where.error("no objective (e.g. objective: 99.9%)")
    try:
        return Objective.parse(value)
    except ValueError as exc:
        raise where.error(str(exc)) from None


def _period(where: _Where, value: Any, timezone: str | None) -> Period:
    try:
        return Period.parse(value if value is not None else DEFAULT_PERIOD, timezone)
    except ValueError as exc:
        raise where.error(str(exc)) from None


def _name(where: _Where, value: Any, what: str = "name") -> str:
    name = _text(where, value, what)
    if not _NAME.fullmatch(name):
        raise where.error(f"{what} {name!r} may hold only letters, digits, '-', '_' and '.'")
    return name


def _profiles(where: _Where, value: Any) -> tuple[str, ...]:
    """``profile: fraiseql-v2`` (or a list): the SLO's queries use that profile's metric names."""
    from fraiseql_checks.targets.profiles import PROFILES

    if value is None:
        return ()
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not names:
        raise where.error(f"profile must be a profile name or a list of them, got {value!r}")
    for name in names:
        if not isinstance(name, str) or name not in PROFILES:
            raise where.error(f"unknown profile {name!r} (expected one of: {', '.join(sorted(PROFILES))})")
    return tuple(sorted(set(names)))


def _alerting(where: _Where, value: Any) -> Alerting:
    if value is None:
        return Alerting()
    block = _mapping(where, value, "alerting")
    known = {"name", "labels", "annotations", "page_labels", "ticket_labels", "enabled", "page_alert", "ticket_alert"}
    unknown = sorted(set(block) - known)
    if unknown:
        raise where.error(f"alerting: unknown key {unknown[0]!r} (expected: {', '.join(sorted(known))})")
    name = block.get("name")
    if name is not None and not re.fullmatch(r"[A-Za-z_:][A-Za-z0-9_:]*", str(name)):
        raise where.error(f"alerting.name {name!r} is not a valid Prometheus alert name")
    annotations = block.get("annotations") or {}
    if not isinstance(annotations, Mapping):
        raise where.error("alerting.annotations must be a mapping")
    page = _mapping(where, block.get("page_alert") or {}, "alerting.page_alert")
    ticket = _mapping(where, block.get("ticket_alert") or {}, "alerting.ticket_alert")
    enabled = bool(block.get("enabled", True)) and not (page.get("disable") and ticket.get("disable"))
    return Alerting(
        name=None if name is None else str(name),
        labels=_labels(where, block.get("labels")),
        annotations={str(k): str(v) for k, v in annotations.items()},
        page_labels=_labels(where, block.get("page_labels") or page.get("labels")),
        ticket_labels=_labels(where, block.get("ticket_labels") or ticket.get("labels")),
        enabled=enabled,
        page_enabled=not page.get("disable"),
        ticket_enabled=not ticket.get("disable"),
    )


# ---- checks ------------------------------------------------------------------------------


def check_slo(check: Check) -> SLO | None:
    """The SLO a check declares with ``@check(slo="99.9% / 30d")``, or ``None``."""
    text = check.spec.slo
    if not text:
        return None
    where = _Where(check.relpath, check.id)
    match = _CHECK_SLO.match(str(text))
    if match is None:
        raise where.error(f"slo must read like '99.9% / 30d' (objective / period), got {text!r}")
    return SLO(
        name=check.name,
        service=check.suite,
        objective=_objective(where, match["objective"]),
        period=_period(where, match["period"], None),
        sli=CheckSLI(check.id, check.interval),
        source=check.id,
        description=check.spec.description or "",
        labels={k: v for k, v in check.labels.items() if k != "suite"},
        runbook=check.runbook,
    )


# ---- this tool's slos.yaml ---------------------------------------------------------------


def _is_bucket_bound(text: str) -> bool:
    """A finite positive number, as a histogram's ``le`` label writes one."""
    try:
        return 0 < float(text) < float("inf")
    except ValueError:
        return False


def _native_sli(where: _Where, value: Any) -> RatioSLI | LatencySLI:
    sli = _mapping(where, value, "sli")
    kinds = [k for k in ("ratio", "latency", "error_ratio") if k in sli]
    if len(kinds) != 1:
        raise where.error("sli needs exactly one of: ratio (good or bad, and total), latency, error_ratio")
    if kinds[0] == "error_ratio":
        return RatioSLI(error_ratio=_query(where, sli["error_ratio"], "sli.error_ratio"))
    if kinds[0] == "ratio":
        ratio = _mapping(where, sli["ratio"], "sli.ratio")
        if ("good" in ratio) == ("bad" in ratio) or "total" not in ratio:
            raise where.error("sli.ratio needs total and one of good or bad")
        good = _query(where, ratio["good"], "sli.ratio.good") if "good" in ratio else None
        bad = _query(where, ratio["bad"], "sli.ratio.bad") if "bad" in ratio else None
        return RatioSLI(good=good, bad=bad, total=_query(where, ratio["total"], "sli.ratio.total"))
    latency = _mapping(where, sli["latency"], "sli.latency")
    metric = _text(where, latency.get("histogram"), "sli.latency.histogram")
    try:
        role = histogram_reference(metric)
    except RoleError as exc:
        raise where.error(f"sli.latency.histogram: {exc}") from None
    metric = family_name(metric, Kind.HISTOGRAM, "bucket")
    if role is None and not NAME.fullmatch(metric):
        raise where.error(f"sli.latency.histogram {metric!r} is not a metric name")
    threshold = latency.get("threshold")
    le = latency.get("le")
    if le is None:
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 < threshold < float("inf"):
            raise where.error(f"sli.latency.threshold must be a number of seconds above 0, got {threshold!r}")
        le = format(threshold, "g") if isinstance(threshold, float) else str(threshold)
    elif isinstance(le, bool) or not isinstance(le, (str, int, float)) or not _is_bucket_bound(str(le)):
        raise where.error(f'sli.latency.le must be a bucket bound such as "0.5", got {le!r}')
    selector = str(latency.get("selector") or "").strip()
    if selector and not (selector.startswith("{") and selector.endswith("}")):
        raise where.error(f"sli.latency.selector must be a label selector such as '{{job=\"api\"}}', got {selector!r}")
    out = LatencySLI(metric, str(le), selector)
    if role is not None:
        return out  # parsed once the role is expanded (per_profile)
    try:
        parse(out.error_ratio_query("5m"))
    except PromQLError as exc:
        raise where.error(f"sli.latency: {exc.reason}") from None
    return out


def _native(document: Mapping[str, Any], source: str) -> list[SLO]:
    where = _Where(source)
    entries = document.get("slos")
    if not isinstance(entries, list):
        raise where.error("slos must be a list of SLOs")
    timezone = document.get("timezone")
    service_default = document.get("service")
    profile_default = document.get("profile")
    out = []
    for index, raw in enumerate(entries):
        entry = _mapping(_Where(source, f"#{index + 1}"), raw, "an SLO")
        where = _Where(source, str(entry.get("name") or f"#{index + 1}"))
        known = {
            "name",
            "service",
            "objective",
            "period",
            "description",
            "labels",
            "sli",
            "alerting",
            "runbook",
            "timezone",
            "profile",
        }
        unknown = sorted(set(entry) - known)
        if unknown:
            raise where.error(f"unknown key {unknown[0]!r} (expected: {', '.join(sorted(known))})")
        out.append(
            SLO(
                name=_name(where, entry.get("name")),
                service=_name(where, entry.get("service") or service_default or "fraiseql", "service"),
                objective=_objective(where, entry.get("objective")),
                period=_period(where, entry.get("period"), entry.get("timezone") or timezone),
                sli=_native_sli(where, entry.get("sli")),
                source=source,
                description=str(entry.get("description") or ""),
                labels=_labels(where, entry.get("labels")),
                alerting=_alerting(where, entry.get("alerting")),
                runbook=entry.get("runbook"),
                profiles=_profiles(where, entry.get("profile", profile_default)),
            )
        )
    return out


# ---- Sloth -------------------------------------------------------------------------------


def _sloth(document: Mapping[str, Any], source: str) -> list[SLO]:
    where = _Where(source)
    service = _name(where, document.get("service"), "service")
    labels = _labels(where, document.get("labels"))
    entries = document.get("slos")
    if not isinstance(entries, list) or not entries:
        raise where.error("a Sloth spec needs a list of slos")
    out = []
    for index, raw in enumerate(entries):
        entry = _mapping(_Where(source, f"#{index + 1}"), raw, "an SLO")
        where = _Where(source, str(entry.get("name") or f"#{index + 1}"))
        sli = _mapping(where, entry.get("sli"), "sli")
        if "events" in sli:
            events = _mapping(where, sli["events"], "sli.events")
            ratio = RatioSLI(
                bad=_query(where, events.get("error_query"), "sli.events.error_query"),
                total=_query(where, events.get("total_query"), "sli.events.total_query"),
            )
        elif "raw" in sli:
            raw_sli = _mapping(where, sli["raw"], "sli.raw")
            ratio = RatioSLI(error_ratio=_query(where, raw_sli.get("error_ratio_query"), "sli.raw.error_ratio_query"))
        elif "plugin" in sli:
            raise where.error("Sloth SLI plugins are not supported: write the plugin's queries as sli.events")
        else:
            raise where.error("sli needs events (error_query, total_query) or raw (error_ratio_query)")
        out.append(
            SLO(
                name=_name(where, entry.get("name")),
                service=service,
                objective=_objective(where, entry.get("objective")),
                period=_period(where, document.get("period") or DEFAULT_PERIOD, None),
                sli=ratio,
                source=source,
                description=str(entry.get("description") or ""),
                labels={**labels, **_labels(where, entry.get("labels"))},
                alerting=_alerting(where, entry.get("alerting")),
            )
        )
    return out


# ---- OpenSLO -----------------------------------------------------------------------------


def _openslo_query(where: _Where, source: Any, what: str, counter: bool) -> str:
    """A ``metricSource`` as a query with a ``{{window}}``: a plain selector of a counter
    becomes ``sum(rate(selector[{{window}}]))`` (of a gauge, ``sum_over_time``)."""
    block = _mapping(where, source, what)
    metric_source = _mapping(where, block.get("metricSource"), f"{what}.metricSource")
    kind = str(metric_source.get("type", "")).lower()
    if kind != "prometheus":
        raise where.error(f"{what}.metricSource.type is {metric_source.get('type')!r}: only Prometheus is supported")
    spec = _mapping(where, metric_source.get("spec"), f"{what}.metricSource.spec")
    query = _text(where, spec.get("query") or spec.get("promql"), f"{what}.metricSource.spec.query")
    if WINDOW_PLACEHOLDER.search(query):
        return _query(where, query, f"{what} query")
    function = "rate" if counter else "sum_over_time"
    try:
        roles = references(query)
    except RoleError as exc:
        raise where.error(f"{what} query: {exc}") from None
    if roles:  # a role alone is a plain selector too: expanded per profile later
        if len(roles) == 1 and roles[0].text == query.strip():
            return f"sum({function}({query.strip()}[{{{{window}}}}]))"
        raise where.error(f"{what} query {query!r} names roles but has no {{{{window}}}} placeholder")
    import promql_parser

    try:
        tree = parse(query)
    except PromQLError as exc:
        raise where.error(f"{what} query: {exc.reason} in {query!r}") from None
    if not isinstance(tree, promql_parser.VectorSelector):
        raise where.error(
            f"{what} query {query!r} is neither a plain selector nor has a {{{{window}}}} placeholder:"
            " the tool cannot give it a window"
        )
    return f"sum({function}({query}[{{{{window}}}}]))"


def _openslo_sli(where: _Where, indicator: Mapping[str, Any]) -> RatioSLI:
    spec = _mapping(where, indicator.get("spec"), "indicator.spec")
    if "thresholdMetric" in spec:
        raise where.error("threshold-metric indicators are not supported: use a ratioMetric")
    ratio = _mapping(where, spec.get("ratioMetric"), "indicator.spec.ratioMetric")
    counter = bool(ratio.get("counter", True))
    if "raw" in ratio:
        query = _openslo_query(where, ratio["raw"], "ratioMetric.raw", counter)
        raw_type = str(ratio.get("rawType", "failure")).lower()
        if raw_type not in ("failure", "success"):
            raise where.error(f"ratioMetric.rawType must be success or failure, got {raw_type!r}")
        return RatioSLI(error_ratio=query if raw_type == "failure" else f"1 - ({query})")
    if ("good" in ratio) == ("bad" in ratio) or "total" not in ratio:
        raise where.error("ratioMetric needs total and one of good or bad")
    good = _openslo_query(where, ratio["good"], "ratioMetric.good", counter) if "good" in ratio else None
    bad = _openslo_query(where, ratio["bad"], "ratioMetric.bad", counter) if "bad" in ratio else None
    return RatioSLI(good=good, bad=bad, total=_openslo_query(where, ratio["total"], "ratioMetric.total", counter))


def _openslo_period(where: _Where, spec: Mapping[str, Any]) -> Period:
    windows = spec.get("timeWindow")
    if not isinstance(windows, list) or len(windows) != 1:
        raise where.error("timeWindow must be a list of one window")
    window = _mapping(where, windows[0], "timeWindow[0]")
    duration = str(window.get("duration", "")).strip()
    rolling = bool(window.get("isRolling", False))
    calendar = window.get("calendar") or {}
    timezone = calendar.get("timeZone") if isinstance(calendar, Mapping) else None
    if not rolling:
        if duration in ("1M", "1mo", "month"):
            return _period(where, "month", timezone)
        if duration in ("1w", "7d", "week"):
            return _period(where, "week", timezone)
        raise where.error(f"calendar timeWindow {duration!r} is not supported: use 1M (month) or 1w (week)")
    if duration.endswith("M"):
        raise where.error(f"rolling timeWindow {duration!r}: write months as days (e.g. 30d)")
    return _period(where, duration, timezone)


def _openslo_labels(where: _Where, value: Any) -> dict[str, str]:
    """OpenSLO labels may hold lists of values; those become comma-separated values."""
    if isinstance(value, Mapping):
        value = {k: ",".join(map(str, v)) if isinstance(v, list) else v for k, v in value.items()}
    return _labels(where, value)


def _openslo(documents: Sequence[tuple[Mapping[str, Any], str]]) -> list[SLO]:
    indicators = {str((doc.get("metadata") or {}).get("name")): doc for doc, _ in documents if doc.get("kind") == "SLI"}
    out = []
    for doc, source in documents:
        if doc.get("kind") != "SLO":
            continue
        metadata = _mapping(_Where(source), doc.get("metadata"), "metadata")
        where = _Where(source, str(metadata.get("name") or "?"))
        name = _name(where, metadata.get("name"), "metadata.name")
        spec = _mapping(where, doc.get("spec"), "spec")
        method = spec.get("budgetingMethod", "Occurrences")
        if method != "Occurrences":
            raise where.error(f"budgetingMethod {method!r} is not supported: only Occurrences")
        if "indicator" in spec:
            indicator = _mapping(where, spec["indicator"], "indicator")
        elif "indicatorRef" in spec:
            ref = str(spec["indicatorRef"])
            if ref not in indicators:
                raise where.error(f"indicatorRef {ref!r}: no kind: SLI named so in the SLO files")
            indicator = indicators[ref]
        else:
            raise where.error("spec needs an indicator or an indicatorRef")
        sli = _openslo_sli(where, indicator)
        objectives = spec.get("objectives")
        if not isinstance(objectives, list) or not objectives:
            raise where.error("spec.objectives must be a list of at least one objective")
        for index, raw in enumerate(objectives):
            objective_block = _mapping(where, raw, f"objectives[{index}]")
            target = objective_block.get("target")
            if target is None and "targetPercent" in objective_block:
                target = f"{objective_block['targetPercent']}%"
            suffix = ""
            if len(objectives) > 1:
                suffix = "-" + str(objective_block.get("displayName") or index + 1).lower().replace(" ", "-")
            out.append(
                SLO(
                    name=_name(where, name + suffix),
                    service=_name(where, spec.get("service") or "fraiseql", "spec.service"),
                    objective=_objective(where, target),
                    period=_openslo_period(where, spec),
                    sli=sli,
                    source=source,
                    description=str(spec.get("description") or metadata.get("displayName") or ""),
                    labels=_openslo_labels(where, metadata.get("labels")),
                )
            )
    return out


# ---- files -------------------------------------------------------------------------------


def read_documents(path: Path, source: str) -> list[Mapping[str, Any]]:
    import yaml

    from fraiseql_checks import yamlfile

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise SLOError(source, None, f"cannot read: {reason}") from None
    try:
        documents = [doc for doc in yamlfile.load_all(text) if doc is not None]
    except yaml.YAMLError as exc:
        raise SLOError(source, None, f"not valid YAML{yamlfile.problem(exc)}") from None
    for doc in documents:
        if not isinstance(doc, Mapping):
            raise SLOError(source, None, f"a document must be a mapping, got {type(doc).__name__}")
    return documents


def load_files(paths: Iterable[tuple[Path, str]]) -> list[SLO]:
    """The SLOs of the files (each given as its path and the name to report it by)."""
    native: list[SLO] = []
    openslo: list[tuple[Mapping[str, Any], str]] = []
    for path, source in paths:
        for doc in read_documents(path, source):
            api = str(doc.get("apiVersion", ""))
            if api.startswith("openslo/"):
                if api != "openslo/v1":
                    raise SLOError(source, None, f"apiVersion {api!r} is not supported: only openslo/v1")
                openslo.append((doc, source))
            elif doc.get("version") == "prometheus/v1":
                native.extend(_sloth(doc, source))
            elif "slos" in doc:
                native.extend(_native(doc, source))
            elif "version" in doc:
                raise SLOError(source, None, f"Sloth spec version {doc['version']!r} is not supported: prometheus/v1")
            else:
                raise SLOError(
                    source, None, "not an SLO file: expected slos:, an OpenSLO document or a Sloth prometheus/v1 spec"
                )
    return [one for slo in native + _openslo(openslo) for one in per_profile(slo)]


# ---- roles -------------------------------------------------------------------------------


def _role_names(sli: SLI) -> list[str]:
    """The roles a request SLI's queries name, each once (none: it names metrics)."""
    if isinstance(sli, LatencySLI):
        role = histogram_reference(sli.metric)
        return [] if role is None else [role.role]
    if isinstance(sli, RatioSLI):
        texts = [q for q in (sli.good, sli.bad, sli.total, sli.error_ratio) if q is not None]
        return list(dict.fromkeys(ref.role for text in texts for ref in references(text)))
    return []


def _for_profile(sli: SLI, profile: str) -> SLI:
    """``sli`` with its role placeholders replaced by ``profile``'s series (``MissingRole`` if it has none)."""
    chosen = PROFILES[profile]
    if isinstance(sli, RatioSLI):
        fields = ("good", "bad", "total", "error_ratio")
        texts = {f: getattr(sli, f) for f in fields if getattr(sli, f) is not None}
        return dataclasses.replace(sli, **{f: expand(text, chosen) for f, text in texts.items()})
    if isinstance(sli, LatencySLI):
        role = histogram_reference(sli.metric)
        if role is None:
            return sli
        series = chosen.series(role.role)
        matchers = [m.promql() for m in series.matchers]
        matchers += [part for part in (role.matchers, sli.selector.strip().strip("{}").strip()) if part]
        return LatencySLI(series.metric, sli.le, f"{{{','.join(matchers)}}}" if matchers else "")
    return sli


def per_profile(slo: SLO) -> list[SLO]:
    """``slo`` once per target profile that has every role its queries name, tied to that profile.

    An SLO without role placeholders is returned as it is. Of the profiles it names
    (``profile:``; none: all), those without a series for one of its roles have no
    such SLO; if none is left, ``SLOError`` says which roles each lacks. Where every
    profile's series are the same, it stays one SLO for those profiles.
    """
    roles = _role_names(slo.sli)
    if not roles:
        return [slo]
    where = _Where(slo.source, slo.name)
    candidates = [name for name in PROFILES if not slo.profiles or name in slo.profiles]
    out = []
    for name in candidates:
        try:
            sli = _for_profile(slo.sli, name)
        except MissingRole:
            continue
        try:
            parse(sli.error_ratio_query("5m"))
        except PromQLError as exc:
            raise where.error(f"sli ({name}): {exc.reason} in {sli.error_ratio_query('{{window}}')!r}") from None
        out.append(dataclasses.replace(slo, sli=sli, profiles=(name,)))
    if not out:
        lacking = {p: [r for r in roles if not PROFILES[p].has(r)] for p in candidates}
        detail = "; ".join(f"{p} has no {', '.join(r)}" for p, r in lacking.items())
        raise where.error(f"no target profile has every role its queries read ({detail})")
    if len(out) == len(candidates) and len({one.sli for one in out}) == 1:
        return [dataclasses.replace(slo, sli=out[0].sli)]  # the same series everywhere: one SLO, as written
    return out


def check_unique(slos: Sequence[SLO]) -> None:
    """Two SLOs with one id (service and name) for one profile would share their series: refuse."""
    seen: dict[str, list[SLO]] = {}
    for slo in slos:
        for other in seen.get(slo.id, []):
            if not slo.profiles or not other.profiles or set(slo.profiles) & set(other.profiles):
                raise SLOError(
                    slo.source, slo.name, f"service {slo.service!r} already has an SLO of this name ({other.source})"
                )
        seen.setdefault(slo.id, []).append(slo)
