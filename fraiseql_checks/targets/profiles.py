"""Target profiles: what a FraiseQL server of each major version exposes, and what each series means.

The facts come from FraiseQL's public sources, as summarised in the project's
FRAISEQL.md: server v2.x (Rust, ``fraiseql/fraiseql``) and legacy v1.x (Python,
``fraiseql/fraiseql-python``). Checks, alert rules, dashboards and the metrics
contract read metric names from here, never from their own string literals.

A profile names **roles**: what a series means (``graphql_errors``, ``http_5xx``,
``pool_waiting``...), mapped to the series that answers it on that version: the
metric, its label matchers, the labels to group by, its type and unit. A role a
profile cannot answer is absent from it. Dashboards ask ``profile.has(role)`` and
``profile.series(role)``; ``@alert`` expressions and SLO queries write the role as a
placeholder, ``{{graphql_errors}}``, expanded per profile by ``expand``. No other
module tells the versions apart.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from typing import NamedTuple

from fraiseql_checks import metrics as own
from fraiseql_checks.metrictypes import HISTOGRAM_PARTS as HISTOGRAM_PARTS  # re-exported: placeholders name them
from fraiseql_checks.metrictypes import Family, Kind, family_of, sample_name

COUNTER = Kind.COUNTER
GAUGE = Kind.GAUGE
HISTOGRAM = Kind.HISTOGRAM


@dataclasses.dataclass(frozen=True)
class Metric(Family):
    """A metric family a FraiseQL server emits: its name, type and label names."""

    name: str
    kind: Kind
    labels: tuple[str, ...] = ()
    #: Empty when every server of the profile emits it; otherwise when it does (a build
    #: feature, a configured subsystem). The metrics contract only needs an optional
    #: series where a rule or dashboard reads it, and the shipped ones read none.
    optional: str = ""


# ---- roles -------------------------------------------------------------------------------


class Role(NamedTuple):
    """What a series means, whatever the version: the name placeholders use, its type, in words."""

    name: str
    type: Kind
    meaning: str
    unit: str = ""


def _roles(*roles: Role) -> dict[str, Role]:
    return {role.name: role for role in roles}


#: Every role a profile may map, in the order the docs list them.
ROLES: dict[str, Role] = _roles(
    # GraphQL
    Role("graphql_requests", COUNTER, "GraphQL queries received"),
    Role("graphql_errors", COUNTER, "GraphQL queries that failed"),
    Role("errors", COUNTER, "every error the server counts"),
    Role("errors_by_type", COUNTER, "errors, labelled by their type"),
    Role("parse_errors", COUNTER, "GraphQL documents that did not parse"),
    Role("validation_errors", COUNTER, "GraphQL documents that did not validate"),
    Role("execution_errors", COUNTER, "GraphQL operations that failed while executing"),
    Role("operation_errors", COUNTER, "failed operations, by operation name"),
    Role("operations", COUNTER, "GraphQL operations, by operation name"),
    Role("operation_types", COUNTER, "GraphQL operations, by type (query, mutation, subscription)"),
    Role("mutations", COUNTER, "GraphQL mutations"),
    Role("subscriptions", COUNTER, "subscriptions registered"),
    Role("ws_connections", COUNTER, "WebSocket connections opened, by result"),
    Role("query_latency", HISTOGRAM, "GraphQL query duration", unit="s"),
    Role("query_cost", COUNTER, "total cost (complexity) of the queries served"),
    Role("apq_hits", COUNTER, "automatic persisted queries found"),
    Role("apq_misses", COUNTER, "automatic persisted queries not found"),
    Role("trusted_document_hits", COUNTER, "trusted documents resolved from the manifest"),
    # HTTP
    Role("http_requests", COUNTER, "HTTP requests"),
    Role("http_latency", HISTOGRAM, "HTTP request duration", unit="s"),
    Role("http_4xx", COUNTER, "HTTP answers with a 4xx status"),
    Role("http_5xx", COUNTER, "HTTP answers with a 5xx status"),
    Role("http_errors", COUNTER, "HTTP answers with a 4xx or 5xx status, in one series"),
    Role("http_denied", COUNTER, "HTTP answers 401 and 403"),
    Role("jwt_replays_rejected", COUNTER, "replayed JWTs refused"),
    # database
    Role("database_queries", COUNTER, "database statements run"),
    Role("statement_types", COUNTER, "database statements, by type"),
    Role("table_queries", COUNTER, "database statements, by table and type"),
    Role("database_latency", HISTOGRAM, "database statement duration", unit="s"),
    Role("statement_time", GAUGE, "execution time per statement (pg_stat_statements)", unit="s"),
    Role("statement_mean_time", GAUGE, "mean execution time per statement (pg_stat_statements)", unit="s"),
    Role("pool_active", GAUGE, "pool connections in use"),
    Role("pool_idle", GAUGE, "pool connections idle"),
    Role("pool_total", GAUGE, "pool connections open (the pool's size)"),
    Role("pool_waiting", GAUGE, "requests waiting for a pool connection"),
    Role("pool_recommended_size", GAUGE, "the pool size the auto-tuner recommends"),
    Role("pool_adjustments", COUNTER, "pool resizes applied or recommended"),
    # cache
    Role("cache_hits", COUNTER, "result cache hits"),
    Role("cache_misses", COUNTER, "result cache misses"),
    # audit (measured by checks/audit, exported by watch mode)
    Role("audit_lag", GAUGE, "how far behind the audit log is", unit="s"),
)


@dataclasses.dataclass(frozen=True)
class Matcher:
    """A label matcher of a role's series: ``status=~"5.."`` (``op``: ``=``, ``!=``, ``=~`` or ``!~``)."""

    label: str
    op: str
    value: str

    @property
    def regex(self) -> bool:
        return self.op in ("=~", "!~")

    def promql(self) -> str:
        from fraiseql_checks.promql import promql_string  # not at import: it loads the PromQL parser

        return f"{self.label}{self.op}{promql_string(self.value)}"


@dataclasses.dataclass(frozen=True)
class Series:
    """What one profile answers for a role: a metric, its matchers, labels to group by, type and unit."""

    #: A family (a histogram's name without ``_bucket``) or one sample name (``x_count``).
    metric: str
    type: Kind
    matchers: tuple[Matcher, ...] = ()
    #: The labels that break the role down where the profile has them (``operation``).
    by: tuple[str, ...] = ()
    #: Every label of the metric (a breakdown finer than ``by``).
    labels: tuple[str, ...] = ()
    unit: str = ""

    @property
    def grouping(self) -> str:
        """``by`` as a grouping clause's list: ``table_name, query_type``."""
        return ", ".join(self.by)

    def sample(self, part: str | None = None) -> str:
        """The sample name a query selects: a histogram's ``bucket``, ``count`` or ``sum`` series."""
        return sample_name(self.metric, self.type, part)

    def selector(self, part: str | None = None, extra: Iterable[str] = ()) -> str:
        """``metric{matchers,extra}`` in PromQL: the role's matchers, then ``extra`` (PromQL text)."""
        matchers = [m.promql() for m in self.matchers] + [e for e in extra if e]
        name = self.sample(part)
        return f"{name}{{{','.join(matchers)}}}" if matchers else name


class RoleError(ValueError):
    """A role placeholder or a role name that cannot be answered."""


class UnknownRole(RoleError):
    """A role no profile defines (a typo): the message names the known roles."""

    def __init__(self, name: str, where: str = "") -> None:
        import difflib

        close = difflib.get_close_matches(name, ROLES, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        at = f" in {where}" if where else ""
        super().__init__(f"unknown role {name!r}{at}{hint}; known roles: {', '.join(ROLES)}")
        self.name = name


class MissingRole(RoleError):
    """A known role the profile cannot answer: that profile has no such panel, alert or SLO."""

    def __init__(self, profile: str, role: str) -> None:
        super().__init__(f"profile {profile} has no series for the role {role!r}")
        self.profile, self.role = profile, role


def role_of(name: str) -> Role:
    """The role called ``name``; ``UnknownRole`` naming the known ones otherwise."""
    try:
        return ROLES[name]
    except KeyError:
        raise UnknownRole(name) from None


# ---- profiles ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Profile:
    """One FraiseQL version as a target: its endpoints, its metric families, and its series per role."""

    name: str
    health_path: str
    readiness_path: str
    metrics_path: str
    graphql_path: str
    metrics: Mapping[str, Metric]
    #: Whether ``/metrics`` needs ``Authorization: Bearer <FRAISEQL_METRICS_TOKEN>``.
    metrics_need_token: bool
    #: The JSON summary at ``/metrics/json`` (v2 only).
    metrics_json_path: str | None = None
    #: The series of each role the profile answers; a role left out has no series here.
    roles: Mapping[str, Series] = dataclasses.field(default_factory=dict)

    def series_names(self) -> frozenset[str]:
        """Every sample name the server may show, optional ones included."""
        return frozenset(s for metric in self.metrics.values() for s in metric.series_names)

    def required_series_names(self) -> frozenset[str]:
        """The sample names every server of the profile shows (no optional family)."""
        return frozenset(s for metric in self.metrics.values() if not metric.optional for s in metric.series_names)

    def optional_series(self) -> dict[str, str]:
        """Each optional sample name, with when the server emits it."""
        return {s: metric.optional for metric in self.metrics.values() if metric.optional for s in metric.series_names}

    def has(self, role: str) -> bool:
        """Whether the profile answers ``role`` (``UnknownRole`` if no profile could)."""
        role_of(role)
        return role in self.roles

    def series(self, role: str) -> Series:
        """The series that answers ``role``: ``MissingRole`` if this profile has none."""
        role_of(role)
        try:
            return self.roles[role]
        except KeyError:
            raise MissingRole(self.name, role) from None


def _metrics(*metrics: Metric) -> dict[str, Metric]:
    return {metric.name: metric for metric in metrics}


def _family(metrics: Mapping[str, Metric], sample: str) -> Metric:
    """The family a sample name belongs to: a histogram's ``x_count`` is ``x``'s."""
    family = metrics.get(sample) or family_of(sample, metrics.values())
    if family is None:
        raise ValueError(f"no metric {sample!r} in the profile")
    return family


def _mapped(
    profile: str,
    metrics: Mapping[str, Metric],
    roles: Mapping[str, tuple[str, Mapping[str, str], tuple[str, ...]]],
) -> dict[str, Series]:
    """Each role's series, checked against the profile's metrics and the role's type.

    ``roles`` maps a role to ``(metric, matchers, by)``; matchers are written as PromQL
    writes them after the label: ``{"status": '=~5..'}`` (``=`` alone may be left out).
    A series of this tool's own (``fraiseql_check_value``) is checked against ``metrics.py``.
    """
    out = {}
    for name, (metric, raw_matchers, by) in roles.items():
        role = role_of(name)
        if metric.startswith(own.NAMESPACE):
            definition = own.by_name(metric)
            family_type, labels = definition.kind, definition.labels
        else:
            family = _family(metrics, metric)
            labels = family.labels
            family_type = family.kind if family.name == metric else COUNTER  # a histogram's _count or _sum
        matchers = []
        for label, text in raw_matchers.items():
            op = next((o for o in ("=~", "!~", "!=", "=") if text.startswith(o)), "=")
            matchers.append(Matcher(label, op, text[len(op) :] if text.startswith(op) else text))
        where = f"profile {profile}, role {name}"
        for label in (*by, *(m.label for m in matchers)):
            if label not in labels:
                raise ValueError(f"{where}: {metric} has no label {label!r}")
        if family_type != role.type:
            raise ValueError(f"{where}: {metric} is a {family_type}, the role is a {role.type}")
        out[name] = Series(metric, family_type, tuple(matchers), by, labels, role.unit)
    return out


_V2 = _metrics(
    # GraphQL (the success and error counters have no _total suffix upstream)
    Metric("fraiseql_graphql_queries_total", COUNTER),
    Metric("fraiseql_graphql_queries_success", COUNTER),
    Metric("fraiseql_graphql_queries_error", COUNTER),
    Metric("fraiseql_graphql_queries_cost_total", COUNTER),
    Metric("fraiseql_graphql_query_duration_ms", GAUGE),  # a gauge of averages
    # errors
    Metric("fraiseql_validation_errors_total", COUNTER),
    Metric("fraiseql_parse_errors_total", COUNTER),
    Metric("fraiseql_execution_errors_total", COUNTER),
    Metric("fraiseql_query_errors_total", COUNTER, ("operation",)),
    # latency histograms
    Metric("fraiseql_query_duration_seconds", HISTOGRAM, ("operation",)),
    Metric("fraiseql_http_request_duration_seconds", HISTOGRAM),
    Metric("fraiseql_database_query_duration_seconds", HISTOGRAM),
    # HTTP
    Metric("fraiseql_http_requests_total", COUNTER),
    Metric("fraiseql_http_responses_2xx", COUNTER),
    Metric("fraiseql_http_responses_4xx", COUNTER),
    Metric("fraiseql_http_responses_5xx", COUNTER),
    # database and pool
    Metric("fraiseql_database_queries_total", COUNTER),
    Metric("fraiseql_database_query_duration_ms", GAUGE),
    Metric("fraiseql_db_pool_connections_total", GAUGE),
    Metric("fraiseql_db_pool_connections_idle", GAUGE),
    Metric("fraiseql_db_pool_connections_active", GAUGE),
    Metric("fraiseql_db_pool_requests_waiting", GAUGE),
    Metric("fraiseql_pool_recommended_size", GAUGE),
    Metric("fraiseql_pool_tuning_adjustments_total", COUNTER),
    # pg_stat_statements
    Metric("fraiseql_db_query_exec_seconds", GAUGE, ("queryid", "query")),
    Metric("fraiseql_db_query_calls", GAUGE, ("queryid", "query")),
    Metric("fraiseql_db_query_mean_exec_seconds", GAUGE, ("queryid", "query")),
    Metric("fraiseql_db_cache_hit_ratio", GAUGE, ("queryid", "query")),
    # cache (hits and misses have no _total suffix upstream)
    Metric("fraiseql_cache_hits", COUNTER),
    Metric("fraiseql_cache_misses", COUNTER),
    Metric("fraiseql_cache_hit_ratio", GAUGE),
    # automatic persisted queries
    Metric("fraiseql_apq_hits_total", COUNTER),
    Metric("fraiseql_apq_misses_total", COUNTER),
    Metric("fraiseql_apq_stored_total", COUNTER),
    Metric("fraiseql_apq_redis_errors_total", COUNTER),
    # other
    Metric("fraiseql_ws_connections_total", COUNTER, ("result",)),
    Metric("fraiseql_ws_subscriptions_total", COUNTER, ("result",)),
    Metric("fraiseql_federation_circuit_breaker_state", GAUGE, ("entity",)),
    Metric("fraiseql_trusted_documents_hits_total", COUNTER),
    Metric("fraiseql_trusted_documents_misses_total", COUNTER),
    Metric("fraiseql_trusted_documents_rejected_total", COUNTER),
    Metric("fraiseql_schema_reloads_total", COUNTER),
    Metric("fraiseql_schema_reload_errors_total", COUNTER),
    Metric("fraiseql_jwt_replay_rejected_total", COUNTER),
    Metric("fraiseql_jwt_replay_cache_errors_total", COUNTER),
    Metric("fraiseql_rate_limit_redis_errors_total", COUNTER),
    Metric("fraiseql_multi_root_queries_total", COUNTER),
    # observer metrics: absent before 2.15.0, since then only in builds with the feature
    Metric("fraiseql_observer_job_queue_depth", GAUGE, optional="builds with the observers-metrics feature (2.15+)"),
    Metric("fraiseql_observer_dlq_items", GAUGE, optional="builds with the observers-metrics feature (2.15+)"),
    # newer families, each only where its subsystem is built in or configured (labels as
    # the upstream sources write them: fraiseql-federation/src/observability.rs, the
    # server's metrics handler, its functions and sources metrics modules)
    Metric(
        "fraiseql_federation_subgraph_latency_seconds", HISTOGRAM, ("subgraph",), optional="servers with federation"
    ),
    Metric("fraiseql_federation_entity_resolution_total", COUNTER, ("outcome",), optional="servers with federation"),
    Metric("fraiseql_mcp_tool_calls_total", COUNTER, optional="builds with the mcp feature"),
    Metric("fraiseql_mcp_tool_errors_total", COUNTER, optional="builds with the mcp feature"),
    Metric("fraiseql_pkce_redis_errors_total", COUNTER, optional="builds with the redis-pkce feature"),
    Metric(
        "fraiseql_function_dispatches_total",
        COUNTER,
        ("function", "trigger_kind", "result"),
        optional="servers with functions, once one has run",
    ),
    Metric(
        "fraiseql_function_run_duration_seconds",
        HISTOGRAM,
        ("function",),
        optional="servers with functions, once one has run",
    ),
    Metric(
        "fraiseql_function_predicate_skips_total",
        COUNTER,
        ("function",),
        optional="servers with functions, once one has run",
    ),
    Metric("fraiseql_function_dlq_size", GAUGE, optional="servers with functions, once one has run"),
    Metric("fraiseql_function_dlq_evictions_total", COUNTER, optional="servers with functions, once one has run"),
    Metric(
        "fraiseql_source_fires_total", COUNTER, ("source", "result"), optional="servers with sources, once one fired"
    ),
    Metric(
        "fraiseql_source_skips_not_leader_total", COUNTER, ("source",), optional="servers with sources, once one fired"
    ),
    Metric(
        "fraiseql_source_run_duration_seconds", HISTOGRAM, ("source",), optional="servers with sources, once one fired"
    ),
    # the wire protocol's own (about 40 more); singular, beside fraiseql_query_errors_total
    Metric(
        "fraiseql_query_error_total",
        COUNTER,
        ("entity", "error_category"),
        optional="the wire protocol adapter, once a query failed",
    ),
)

_V1 = _metrics(
    Metric("fraiseql_graphql_queries_total", COUNTER, ("operation_type", "operation_name")),
    Metric("fraiseql_graphql_query_duration_seconds", HISTOGRAM),
    Metric("fraiseql_graphql_queries_success_total", COUNTER),
    Metric("fraiseql_graphql_queries_errors_total", COUNTER),
    Metric("fraiseql_graphql_mutations_total", COUNTER),
    Metric("fraiseql_db_connections_active", GAUGE),
    Metric("fraiseql_db_connections_idle", GAUGE),
    Metric("fraiseql_db_connections_total", GAUGE),
    Metric("fraiseql_db_queries_total", COUNTER, ("query_type", "table_name")),
    Metric("fraiseql_db_query_duration_seconds", HISTOGRAM),
    Metric("fraiseql_cache_hits_total", COUNTER, ("cache_type",)),
    Metric("fraiseql_cache_misses_total", COUNTER, ("cache_type",)),
    Metric("fraiseql_errors_total", COUNTER, ("error_type", "error_code", "operation")),
    Metric("fraiseql_http_requests_total", COUNTER, ("method", "endpoint", "status")),
    Metric("fraiseql_http_request_duration_seconds", HISTOGRAM, ("method", "endpoint")),
)

_NONE: Mapping[str, str] = {}

#: role: (metric, matchers, labels to group by)
_V2_ROLES = _mapped(
    "fraiseql-v2",
    _V2,
    {
        "graphql_requests": ("fraiseql_graphql_queries_total", _NONE, ()),
        "graphql_errors": ("fraiseql_graphql_queries_error", _NONE, ()),
        "errors": ("fraiseql_graphql_queries_error", _NONE, ()),
        "parse_errors": ("fraiseql_parse_errors_total", _NONE, ()),
        "validation_errors": ("fraiseql_validation_errors_total", _NONE, ()),
        "execution_errors": ("fraiseql_execution_errors_total", _NONE, ()),
        "operation_errors": ("fraiseql_query_errors_total", _NONE, ("operation",)),
        "operations": ("fraiseql_query_duration_seconds_count", _NONE, ("operation",)),
        "subscriptions": ("fraiseql_ws_subscriptions_total", _NONE, ("result",)),
        "ws_connections": ("fraiseql_ws_connections_total", _NONE, ("result",)),
        "query_latency": ("fraiseql_query_duration_seconds", _NONE, ("operation",)),
        "query_cost": ("fraiseql_graphql_queries_cost_total", _NONE, ()),
        "apq_hits": ("fraiseql_apq_hits_total", _NONE, ()),
        "apq_misses": ("fraiseql_apq_misses_total", _NONE, ()),
        "trusted_document_hits": ("fraiseql_trusted_documents_hits_total", _NONE, ()),
        "http_requests": ("fraiseql_http_requests_total", _NONE, ()),
        "http_latency": ("fraiseql_http_request_duration_seconds", _NONE, ()),
        "http_4xx": ("fraiseql_http_responses_4xx", _NONE, ()),
        "http_5xx": ("fraiseql_http_responses_5xx", _NONE, ()),
        "jwt_replays_rejected": ("fraiseql_jwt_replay_rejected_total", _NONE, ()),
        "database_queries": ("fraiseql_database_queries_total", _NONE, ()),
        "database_latency": ("fraiseql_database_query_duration_seconds", _NONE, ()),
        "statement_time": ("fraiseql_db_query_exec_seconds", _NONE, ("query",)),
        "statement_mean_time": ("fraiseql_db_query_mean_exec_seconds", _NONE, ("queryid", "query")),
        "pool_active": ("fraiseql_db_pool_connections_active", _NONE, ()),
        "pool_idle": ("fraiseql_db_pool_connections_idle", _NONE, ()),
        "pool_total": ("fraiseql_db_pool_connections_total", _NONE, ()),
        "pool_waiting": ("fraiseql_db_pool_requests_waiting", _NONE, ()),
        "pool_recommended_size": ("fraiseql_pool_recommended_size", _NONE, ()),
        "pool_adjustments": ("fraiseql_pool_tuning_adjustments_total", _NONE, ()),
        "cache_hits": ("fraiseql_cache_hits", _NONE, ()),
        "cache_misses": ("fraiseql_cache_misses", _NONE, ()),
        # v2 writes when each event happened and when it was stored: the write delay
        "audit_lag": (own.VALUE.name, {"name": "audit_write_delay_seconds"}, ()),
    },
)

_V1_ROLES = _mapped(
    "fraiseql-v1",
    _V1,
    {
        "graphql_requests": ("fraiseql_graphql_queries_total", _NONE, ()),
        "graphql_errors": ("fraiseql_graphql_queries_errors_total", _NONE, ()),
        "errors": ("fraiseql_errors_total", _NONE, ()),
        "errors_by_type": ("fraiseql_errors_total", _NONE, ("error_type",)),
        "operation_errors": ("fraiseql_errors_total", _NONE, ("operation",)),
        "operations": ("fraiseql_graphql_queries_total", _NONE, ("operation_name",)),
        "operation_types": ("fraiseql_graphql_queries_total", _NONE, ("operation_type",)),
        "mutations": ("fraiseql_graphql_mutations_total", _NONE, ()),
        "query_latency": ("fraiseql_graphql_query_duration_seconds", _NONE, ()),
        "http_requests": ("fraiseql_http_requests_total", _NONE, ("endpoint",)),
        "http_latency": ("fraiseql_http_request_duration_seconds", _NONE, ("endpoint",)),
        "http_4xx": ("fraiseql_http_requests_total", {"status": "=~4.."}, ("endpoint",)),
        "http_5xx": ("fraiseql_http_requests_total", {"status": "=~5.."}, ("endpoint",)),
        "http_errors": ("fraiseql_http_requests_total", {"status": "=~[45].."}, ("endpoint",)),
        "http_denied": ("fraiseql_http_requests_total", {"status": "=~401|403"}, ("endpoint",)),
        "database_queries": ("fraiseql_db_queries_total", _NONE, ()),
        "statement_types": ("fraiseql_db_queries_total", _NONE, ("query_type",)),
        "table_queries": ("fraiseql_db_queries_total", _NONE, ("table_name", "query_type")),
        "database_latency": ("fraiseql_db_query_duration_seconds", _NONE, ()),
        "pool_active": ("fraiseql_db_connections_active", _NONE, ()),
        "pool_idle": ("fraiseql_db_connections_idle", _NONE, ()),
        "pool_total": ("fraiseql_db_connections_total", _NONE, ()),
        "cache_hits": ("fraiseql_cache_hits_total", _NONE, ("cache_type",)),
        "cache_misses": ("fraiseql_cache_misses_total", _NONE, ("cache_type",)),
        # v1 keeps no write time: the age of the newest event is all there is
        "audit_lag": (own.VALUE.name, {"name": "audit_lag_seconds"}, ()),
    },
)

PROFILES: dict[str, Profile] = {
    "fraiseql-v2": Profile(
        name="fraiseql-v2",
        health_path="/health",
        readiness_path="/readiness",
        metrics_path="/metrics",
        graphql_path="/graphql",
        metrics=_V2,
        metrics_need_token=True,
        metrics_json_path="/metrics/json",
        roles=_V2_ROLES,
    ),
    "fraiseql-v1": Profile(
        name="fraiseql-v1",
        health_path="/health",
        readiness_path="/ready",
        metrics_path="/metrics",
        graphql_path="/graphql",
        metrics=_V1,
        metrics_need_token=False,
        roles=_V1_ROLES,
    ),
}
DEFAULT_PROFILE = "fraiseql-v2"


# ---- placeholders ------------------------------------------------------------------------

#: ``{{ ... }}`` in an expression: a role (``{{http_5xx}}``, ``{{query_latency.bucket}}``,
#: ``{{http_5xx{job="api"}}}``), or an SLO query's ``{{window}}`` (Sloth: ``{{.window}}``).
PLACEHOLDER = re.compile(r"\{\{\s*(?P<body>[^{}]*?(?:\{[^{}]*\})?)\s*\}\}")
_REFERENCE = re.compile(r"(?P<role>[A-Za-z_][A-Za-z0-9_]*)(?:\.(?P<part>[A-Za-z_]+))?\s*(?:\{(?P<matchers>[^{}]*)\})?")
#: Placeholders that are not roles: the SLO window.
_NOT_ROLES = ("window", ".window")


class RoleReference(NamedTuple):
    """One role placeholder: the role, the histogram part it names, extra matchers (PromQL)."""

    role: str
    part: str | None = None
    matchers: str = ""
    text: str = ""


def references(text: str) -> list[RoleReference]:
    """The role placeholders of ``text``, checked against the roles (not any profile).

    ``UnknownRole`` for a role no profile defines; ``RoleError`` for a malformed
    placeholder or a part the role's type has not (``.bucket`` of a counter).
    """
    found = []
    for match in PLACEHOLDER.finditer(text):
        body = match["body"].strip()
        if body in _NOT_ROLES:
            continue
        parsed = _REFERENCE.fullmatch(body)
        if parsed is None:
            forms = '{{role}}, {{role.bucket}} or {{role{label="value"}}}'
            raise RoleError(f"malformed placeholder {match[0]}: write {forms}")
        name, part = parsed["role"], parsed["part"]
        role = ROLES.get(name)
        if role is None:
            raise UnknownRole(name, match[0])
        if role.type == HISTOGRAM and part not in HISTOGRAM_PARTS:
            raise RoleError(f"{match[0]}: {name} is a histogram: write {{{{{name}.bucket}}}}, .count or .sum")
        if role.type != HISTOGRAM and part is not None:
            raise RoleError(f"{match[0]}: {name} is a {role.type}, it has no .{part}")
        found.append(RoleReference(name, part, (parsed["matchers"] or "").strip().rstrip(","), match[0]))
    return found


def expand(text: str, profile: Profile) -> str:
    """``text`` with every role placeholder replaced by ``profile``'s series (``{{window}}`` stays).

    ``MissingRole`` if the profile has no series for one of them; ``UnknownRole`` or
    ``RoleError`` as ``references`` raises them.
    """
    refs = {ref.text: ref for ref in references(text)}
    for ref in refs.values():
        profile.series(ref.role)

    def one(match: re.Match[str]) -> str:
        ref = refs.get(match[0])
        if ref is None:
            return match[0]
        return profile.series(ref.role).selector(ref.part, [ref.matchers])

    return PLACEHOLDER.sub(one, text)


def expand_per_profile(text: str, profiles: Iterable[str] | None = None) -> dict[str, str]:
    """``text`` expanded for every profile (of ``profiles``, default all) that has all its roles.

    A text without role placeholders is the same for each. ``UnknownRole`` or
    ``RoleError`` for a bad placeholder, whatever the profiles.
    """
    refs = references(text)
    out = {}
    for name in PROFILES if profiles is None else profiles:
        profile = PROFILES[name]
        if all(profile.has(ref.role) for ref in refs):
            out[name] = expand(text, profile) if refs else text
    return out


def missing_roles(text: str, profiles: Iterable[str] | None = None) -> dict[str, list[str]]:
    """For each profile lacking some role ``text`` reads: those roles (for error messages)."""
    wanted = list(dict.fromkeys(ref.role for ref in references(text)))
    out = {}
    for name in PROFILES if profiles is None else profiles:
        lacking = [role for role in wanted if not PROFILES[name].has(role)]
        if lacking:
            out[name] = lacking
    return out


def histogram_reference(text: str) -> RoleReference | None:
    """A histogram named by its role, as an SLO's ``latency.histogram`` may be: ``{{http_latency}}``
    (or ``{{http_latency{job="api"}}}``); ``None`` if ``text`` is no placeholder (a metric name)."""
    match = PLACEHOLDER.fullmatch(text.strip())
    if match is None:
        return None
    parsed = _REFERENCE.fullmatch(match["body"].strip())
    if parsed is None or parsed["part"] is not None:
        raise RoleError(f"{text.strip()}: name a histogram role alone, such as {{{{http_latency}}}}")
    role = role_of(parsed["role"])
    if role.type != HISTOGRAM:
        raise RoleError(f"{text.strip()}: {role.name} is a {role.type}, not a histogram")
    return RoleReference(role.name, None, (parsed["matchers"] or "").strip().rstrip(","), match[0])
