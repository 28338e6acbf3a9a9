"""The seed's service dashboards: Operations Overview (10 panels), Error Analysis (10), User Activity (8).

Built on the profile's FraiseQL series; where FraiseQL has none (severity, how
long a failure lasts, what users do), on this tool's own metrics and the values
the audit checks record. Titles say what a panel really shows when it is not
what the seed named; ``docs/dashboards.md`` lists those substitutions.
"""

from __future__ import annotations

from fraiseql_checks import metrics as m
from fraiseql_checks.dashboards.model import Dashboard, Panel, Row, Target, thresholds_for
from fraiseql_checks.dashboards.queries import RATE, Re
from fraiseql_checks.dashboards.seed import Seed, hit_ratio, ratio

FIVE_XX = Re("5..")


def _error_series(s: Seed) -> str:
    """The errors the server counts: v2 failed GraphQL queries, v1 every error by type."""
    return "fraiseql_errors_total" if s.v1 else "fraiseql_graphql_queries_error"


def _server_errors(s: Seed) -> str:
    if s.v1:
        return s.rate("fraiseql_http_requests_total", status=FIVE_XX)
    return s.rate("fraiseql_http_responses_5xx")


def operations_overview(s: Seed) -> Dashboard:
    queries_errors = "fraiseql_graphql_queries_errors_total" if s.v1 else "fraiseql_graphql_queries_error"
    if s.v1:
        top = Target(
            f"topk(10, {s.increase('fraiseql_graphql_queries_total', by='operation_name')})",
            legend="{{operation_name}}",
            instant=True,
        )
        kinds = Panel(
            "Operation type breakdown",
            "piechart",
            (
                Target(
                    s.increase("fraiseql_graphql_queries_total", by="operation_type"),
                    "{{operation_type}}",
                    instant=True,
                ),
            ),
            description="GraphQL operations by type (query, mutation, subscription) over the time range.",
        )
        modes = Panel(
            "Statements by type (no execution-mode metric in v1)",
            "piechart",
            (Target(s.increase("fraiseql_db_queries_total", by="query_type"), "{{query_type}}", instant=True),),
            description="FraiseQL v1 does not export which pipeline (Rust, Python, APQ) ran a query; "
            "this is the nearest true thing: the database statements its queries became, by type.",
        )
        complexity = Panel(
            "Query duration distribution (no complexity metric in v1)",
            "heatmap",
            (
                Target(
                    f"sum by (le) (rate({s.fq('fraiseql_graphql_query_duration_seconds_bucket')}[{RATE}]))",
                    "{{le}}",
                    format="heatmap",
                ),
            ),
            description="FraiseQL v1 exports no query cost; query durations are the nearest true thing.",
        )
    else:
        top = Target(
            f"topk(10, {s.increase('fraiseql_query_duration_seconds_count', by='operation')})",
            legend="{{operation}}",
            instant=True,
        )
        kinds = Panel(
            "Operation type breakdown: queries and subscriptions",
            "piechart",
            (
                Target(s.increase("fraiseql_graphql_queries_total"), "queries and mutations", instant=True),
                Target(s.increase("fraiseql_ws_subscriptions_total"), "subscriptions", instant=True),
            ),
            description="FraiseQL v2 counts queries and mutations together; subscriptions are counted apart.",
        )
        modes = Panel(
            "Execution mode: persisted and trusted queries",
            "piechart",
            (
                Target(s.increase("fraiseql_apq_hits_total"), "APQ hit", instant=True),
                Target(s.increase("fraiseql_apq_misses_total"), "APQ miss", instant=True),
                Target(s.increase("fraiseql_trusted_documents_hits_total"), "trusted document", instant=True),
            ),
            description="FraiseQL v2 runs every query in Rust; what varies is how the query arrives: "
            "automatic persisted queries (APQ) and trusted documents.",
        )
        complexity = Panel(
            "Query complexity: average cost per query",
            "timeseries",
            (
                Target(
                    ratio(s.rate("fraiseql_graphql_queries_cost_total"), s.rate("fraiseql_graphql_queries_total")),
                    "cost per query",
                ),
            ),
            description="FraiseQL v2 counts the total cost of queries, not a distribution: this is the mean.",
        )
    cache_hits, cache_misses = (
        ("fraiseql_cache_hits_total", "fraiseql_cache_misses_total")
        if s.v1
        else ("fraiseql_cache_hits", "fraiseql_cache_misses")
    )
    db_queries = "fraiseql_db_queries_total" if s.v1 else "fraiseql_database_queries_total"
    active, total = (
        ("fraiseql_db_connections_active", "fraiseql_db_connections_total")
        if s.v1
        else ("fraiseql_db_pool_connections_active", "fraiseql_db_pool_connections_total")
    )
    latency = "fraiseql_http_request_duration_seconds"
    traffic = Row(
        "Traffic",
        (
            Panel(
                "Request rate",
                "timeseries",
                (
                    Target(s.rate("fraiseql_http_requests_total"), "HTTP requests/s"),
                    Target(s.rate("fraiseql_graphql_queries_total"), "GraphQL queries/s"),
                ),
                unit="reqps",
                width=8,
            ),
            Panel(
                "Latency percentiles (P50, P95, P99)",
                "timeseries",
                tuple(Target(s.quantile(q, latency), f"P{round(q * 100)}") for q in (0.5, 0.95, 0.99)),
                description=(
                    "HTTP request duration; the 1s line is the HighLatency alert's threshold, which it applies"
                    " to the P99 of GraphQL query time"
                    f" ({'fraiseql_graphql_query_duration_seconds' if s.v1 else 'fraiseql_query_duration_seconds'})."
                ),
                unit="s",
                thresholds=thresholds_for([1.0]),
                width=8,
            ),
            Panel(
                "Error rate",
                "timeseries",
                (Target(ratio(s.rate(queries_errors), s.rate("fraiseql_graphql_queries_total")), "errors / queries"),),
                description="Share of GraphQL queries that failed. The HighErrorRate alert fires above 5%.",
                unit="percentunit",
                thresholds=thresholds_for([0.05]),
                width=8,
            ),
        ),
    )
    operations = Row(
        "Operations",
        (
            Panel("Top 10 operations", "bargauge", (top,), description="Most frequent operations over the time range."),
            kinds,
            modes,
            complexity,
        ),
    )
    backend = Row(
        "Cache and database",
        (
            Panel(
                "Cache hit rate",
                "timeseries",
                (Target(hit_ratio(s.rate(cache_hits), s.rate(cache_misses)), "hit rate"),),
                description="The LowCacheHitRate alert fires below 75%.",
                unit="percentunit",
                thresholds=thresholds_for([0.75], bad="below"),
                min=0,
                max=1,
                width=8,
            ),
            Panel(
                "Database queries/sec",
                "timeseries",
                (Target(s.rate(db_queries), "queries/s"),),
                unit="ops",
                width=8,
            ),
            Panel(
                "Active connections",
                "timeseries",
                (Target(f"sum({s.fq(active)})", "active"), Target(f"sum({s.fq(total)})", "pool size")),
                description="Database connections of FraiseQL's pool in use, against the pool's size.",
                width=8,
            ),
        ),
    )
    return s.dashboard(
        "Operations Overview",
        (traffic, operations, backend),
        "High-level health of the FraiseQL server: traffic, latency, errors, operations, cache and database.",
        anchor="fraiseql_http_requests_total",
    )


def error_analysis(s: Seed) -> Dashboard:
    if s.v1:
        fingerprints = Panel(
            "Top 10 error fingerprints",
            "bargauge",
            (
                Target(
                    f"topk(10, {s.increase('fraiseql_errors_total', by='error_type, error_code, operation')})",
                    "{{error_type}} {{error_code}} {{operation}}",
                    instant=True,
                ),
            ),
            description="Errors by type, code and operation over the time range.",
        )
        by_type: tuple[Target, ...] = (Target(s.rate("fraiseql_errors_total", by="error_type"), "{{error_type}}"),)
        by_endpoint = Panel(
            "Errors by endpoint",
            "timeseries",
            (Target(s.rate("fraiseql_http_requests_total", by="endpoint", status=Re("[45]..")), "{{endpoint}}"),),
            description="HTTP 4xx and 5xx answers per second, by endpoint.",
            unit="reqps",
            stack=True,
        )
        recent = Target(
            f"{s.increase('fraiseql_errors_total', by='error_type, error_code, operation', window='1h')} > 0",
            format="table",
            instant=True,
        )
        failing_share = ratio(_server_errors(s), s.rate("fraiseql_http_requests_total"))
    else:
        fingerprints = Panel(
            "Top 10 failing operations (no error fingerprints in FraiseQL)",
            "bargauge",
            (
                Target(
                    f"topk(10, {s.increase('fraiseql_query_errors_total', by='operation')})",
                    "{{operation}}",
                    instant=True,
                ),
            ),
            description="FraiseQL v2 does not fingerprint errors; the operations that failed most are the nearest "
            "true thing.",
        )
        by_type = (
            Target(s.rate("fraiseql_parse_errors_total"), "parse"),
            Target(s.rate("fraiseql_validation_errors_total"), "validation"),
            Target(s.rate("fraiseql_execution_errors_total"), "execution"),
        )
        by_endpoint = Panel(
            "Errors by status class (v2 has no endpoint label)",
            "timeseries",
            (
                Target(s.rate("fraiseql_http_responses_4xx"), "4xx"),
                Target(s.rate("fraiseql_http_responses_5xx"), "5xx"),
            ),
            description="FraiseQL v2 counts HTTP answers by class, not by endpoint (it serves GraphQL on one).",
            unit="reqps",
            stack=True,
        )
        recent = Target(
            f"{s.increase('fraiseql_query_errors_total', by='operation', window='1h')} > 0",
            format="table",
            instant=True,
        )
        failing_share = ratio(s.rate("fraiseql_http_responses_5xx"), s.rate("fraiseql_http_requests_total"))
    down = f"({s.own(m.UP)} == 0)"
    info = s.own(m.INFO)
    over_time = Row(
        "Errors over time",
        (
            Panel(
                "Error rate over time",
                "timeseries",
                (Target(s.rate(_error_series(s)), "GraphQL errors/s"), Target(_server_errors(s), "HTTP 5xx/s")),
                unit="reqps",
                width=8,
            ),
            Panel(
                "Error trends (hourly)",
                "timeseries",
                (Target(s.increase(_error_series(s), window="1h"), "errors per hour", interval="1h"),),
                draw="bars",
                width=8,
            ),
            Panel(
                "Errors now and a day earlier (no first/repeat split in FraiseQL)",
                "timeseries",
                (
                    Target(s.rate(_error_series(s)), "now"),
                    Target(s.rate(_error_series(s), offset="1d"), "a day earlier"),
                ),
                description="FraiseQL does not tell first errors from repeats; comparing with the same time "
                "yesterday shows what is new.",
                unit="reqps",
                width=8,
            ),
        ),
    )
    breakdown = Row(
        "Breakdown",
        (
            fingerprints,
            Panel("Errors by type", "timeseries", by_type, unit="reqps", stack=True),
            by_endpoint,
            Panel(
                "Failing checks by severity",
                "timeseries",
                (
                    Target(
                        f"count by (severity) ({down} * on(job, instance, check) group_left(severity) {info})",
                        "{{severity}}",
                    ),
                ),
                description="FraiseQL errors carry no severity; the checks of fraiseql-check do: how many of them "
                "fail now, by severity.",
                draw="bars",
                stack=True,
            ),
        ),
    )
    impact = Row(
        "Impact",
        (
            Panel(
                "Operations with errors in the last hour",
                "table",
                (recent,),
                description="The nearest true thing to a list of recent errors: FraiseQL exports counts, not events.",
                width=8,
            ),
            Panel(
                "Share of requests failing (metrics count no users)",
                "timeseries",
                (Target(failing_share, "5xx / requests"),),
                description="FraiseQL's metrics carry no user ids (no PII), so affected users cannot be counted; "
                "this is the share of requests answered with a server error.",
                unit="percentunit",
                width=8,
            ),
            Panel(
                "How long failing checks have been failing",
                "timeseries",
                (
                    Target(
                        f"({s.own(m.CONSECUTIVE_FAILURES)} * on(job, instance, check) {s.own(m.INTERVAL)}) > 0",
                        "{{check}}",
                    ),
                ),
                description="Consecutive failed runs times the interval: roughly how long each failure has lasted "
                "(the nearest true thing to an error's resolution time).",
                unit="s",
                width=8,
            ),
        ),
    )
    return s.dashboard(
        "Error Analysis",
        (over_time, breakdown, impact),
        "Errors of the FraiseQL server, and the checks that fail, to investigate and resolve them.",
        anchor="fraiseql_http_requests_total",
    )


def user_activity(s: Seed) -> Dashboard:
    if s.v1:
        sessions = Panel(
            "Requests by endpoint (metrics count no users or tenants)",
            "timeseries",
            (Target(s.rate("fraiseql_http_requests_total", by="endpoint"), "{{endpoint}}"),),
            description="FraiseQL's metrics carry no user or tenant ids (no PII); requests by endpoint show the "
            "activity itself.",
            unit="reqps",
            stack=True,
        )
        per_operation = Target(
            f"sort_desc({s.increase('fraiseql_graphql_queries_total', by='operation_type, operation_name')})",
            format="table",
            instant=True,
        )
        heat = "fraiseql_graphql_query_duration_seconds_bucket"
        mix = Panel(
            "Queries and mutations (no complexity metric in v1)",
            "timeseries",
            (
                Target(s.rate("fraiseql_graphql_queries_total"), "queries"),
                Target(s.rate("fraiseql_graphql_mutations_total"), "mutations"),
            ),
            unit="reqps",
        )
    else:
        sessions = Panel(
            "WebSocket sessions opened (metrics count no users or tenants)",
            "timeseries",
            (Target(s.rate("fraiseql_ws_connections_total", by="result"), "{{result}}"),),
            description="FraiseQL's metrics carry no user or tenant ids (no PII); WebSocket sessions opened "
            "are the nearest count of clients.",
            stack=True,
        )
        per_operation = Target(
            f"sort_desc({s.increase('fraiseql_query_duration_seconds_count', by='operation')})",
            format="table",
            instant=True,
        )
        heat = "fraiseql_query_duration_seconds_bucket"
        mix = Panel(
            "Query complexity: cost per second",
            "timeseries",
            (Target(s.rate("fraiseql_graphql_queries_cost_total"), "cost/s"),),
            description="The total cost of the queries served, per second (FraiseQL v2 counts no distribution).",
        )
    audited = Panel(
        "Admin actions and permission changes (audit, last 24h)",
        "timeseries",
        (
            Target(s.value("admin_actions", "check_admin_actions_attributed"), "admin actions"),
            Target(s.value("permission_changes", "check_permission_changes_have_states"), "permission changes"),
        ),
        description="Who does what is in the audit trail, not in metrics: the audit checks count these actions "
        "over the last 24 hours (the nearest true thing to the top users).",
        draw="bars",
    )
    refused = Panel(
        "Failed logins and permission denials (audit, peak per 5 min)",
        "timeseries",
        (
            Target(s.value("failed_logins", "check_failed_logins"), "failed logins"),
            Target(s.value("permission_denied_events", "check_permission_denied_spike"), "permission denied"),
        ),
        description="The users' errors that matter for security, from the audit checks: the most within any "
        "5 minutes of their last run.",
    )
    requests = "fraiseql_http_requests_total"
    return s.dashboard(
        "User Activity",
        (
            Row(
                "Activity",
                (
                    sessions,
                    Panel(
                        "Requests per operation (metrics count no users)",
                        "table",
                        (per_operation,),
                        description="Operations over the time range; per-user counts are in the audit trail "
                        "(fraiseql-check audit report).",
                    ),
                    Panel(
                        "Query patterns (heatmap of durations)",
                        "heatmap",
                        (Target(f"sum by (le) (rate({s.fq(heat)}[{RATE}]))", "{{le}}", format="heatmap"),),
                    ),
                    mix,
                ),
            ),
            Row(
                "Users, from the audit trail",
                (
                    audited,
                    refused,
                    Panel(
                        "Usage trend: this week and last (no new-user metric)",
                        "timeseries",
                        (
                            Target(s.rate(requests, window="1h"), "this week"),
                            Target(s.rate(requests, window="1h", offset="1w"), "a week earlier"),
                        ),
                        description="No metric counts new users; week-over-week traffic shows growth.",
                        unit="reqps",
                    ),
                    Panel(
                        "Instance comparison (no tenant label in metrics)",
                        "timeseries",
                        (Target(s.rate(requests, by="instance"), "{{instance}}"),),
                        description="Metrics carry no tenant; requests per FraiseQL instance compare the servers.",
                        unit="reqps",
                    ),
                ),
            ),
        ),
        "What clients do with the FraiseQL server, from its metrics and from the audit checks.",
        anchor="fraiseql_http_requests_total",
    )
