"""Target profiles: what a FraiseQL server of each major version exposes.

The facts come from FraiseQL's public sources, as summarised in the project's
FRAISEQL.md: server v2.x (Rust, ``fraiseql/fraiseql``) and legacy v1.x (Python,
``fraiseql/fraiseql-python``). Checks, alert rules, dashboards and the metrics
contract read metric names from here, never from their own string literals.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

COUNTER = "counter"
GAUGE = "gauge"
HISTOGRAM = "histogram"


@dataclasses.dataclass(frozen=True)
class Metric:
    """A metric family a FraiseQL server emits: its name, type and label names."""

    name: str
    type: str
    labels: tuple[str, ...] = ()

    @property
    def series_names(self) -> tuple[str, ...]:
        """The sample names it shows on ``/metrics`` (a histogram has three)."""
        if self.type == HISTOGRAM:
            return (f"{self.name}_bucket", f"{self.name}_sum", f"{self.name}_count")
        return (self.name,)


@dataclasses.dataclass(frozen=True)
class Profile:
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

    def series_names(self) -> frozenset[str]:
        return frozenset(s for metric in self.metrics.values() for s in metric.series_names)


def _metrics(*metrics: Metric) -> dict[str, Metric]:
    return {metric.name: metric for metric in metrics}


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
    Metric("fraiseql_rate_limit_redis_errors_total", COUNTER),
    Metric("fraiseql_observer_job_queue_depth", GAUGE),
    Metric("fraiseql_observer_dlq_items", GAUGE),
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
    ),
    "fraiseql-v1": Profile(
        name="fraiseql-v1",
        health_path="/health",
        readiness_path="/ready",
        metrics_path="/metrics",
        graphql_path="/graphql",
        metrics=_V1,
        metrics_need_token=False,
    ),
}
DEFAULT_PROFILE = "fraiseql-v2"
