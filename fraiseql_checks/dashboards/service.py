"""The seed's service dashboards: Operations Overview (10 panels), Error Analysis (10), User Activity (8).

Built on the profile's roles (``profiles.py``); where FraiseQL has no series (severity,
how long a failure lasts, what users do), on this tool's own metrics and the values
the audit checks record. A panel whose roles the profile lacks is left out. Titles
say what a panel really shows when it is not what the seed named;
``docs/dashboards.md`` lists those substitutions.
"""

from __future__ import annotations

from fraiseql_checks import metrics as m
from fraiseql_checks.dashboards.model import Dashboard, Panel, Target, thresholds_for
from fraiseql_checks.dashboards.seed import Seed, hit_ratio, legend, ratio, row


def _operation_types(s: Seed) -> Panel:
    """Operations by type where the profile labels them so; otherwise queries beside subscriptions."""
    if s.has("operation_types"):
        types = s.series("operation_types")
        return Panel(
            "Operation type breakdown",
            "piechart",
            (Target(s.increase("operation_types", by=types.grouping), legend(types.by), instant=True),),
            description="GraphQL operations by type (query, mutation, subscription) over the time range.",
        )
    targets = [Target(s.increase("graphql_requests"), "queries and mutations", instant=True)]
    if s.has("subscriptions"):
        targets.append(Target(s.increase("subscriptions"), "subscriptions", instant=True))
    return Panel(
        "Operation type breakdown: queries and subscriptions",
        "piechart",
        tuple(targets),
        description="FraiseQL v2 counts queries and mutations together; subscriptions are counted apart.",
    )


def _execution_modes(s: Seed) -> Panel | None:
    """How queries arrive (persisted, trusted) where counted; else the statements they became."""
    if s.has("apq_hits"):
        modes = [("apq_hits", "APQ hit"), ("apq_misses", "APQ miss"), ("trusted_document_hits", "trusted document")]
        return Panel(
            "Execution mode: persisted and trusted queries",
            "piechart",
            tuple(Target(s.increase(role), label, instant=True) for role, label in modes if s.has(role)),
            description="FraiseQL v2 runs every query in Rust; what varies is how the query arrives: "
            "automatic persisted queries (APQ) and trusted documents.",
        )
    if s.has("statement_types"):
        types = s.series("statement_types")
        return Panel(
            "Statements by type (no execution-mode metric in v1)",
            "piechart",
            (Target(s.increase("statement_types", by=types.grouping), legend(types.by), instant=True),),
            description="FraiseQL v1 does not export which pipeline (Rust, Python, APQ) ran a query; "
            "this is the nearest true thing: the database statements its queries became, by type.",
        )
    return None


def _complexity(s: Seed) -> Panel:
    """The mean query cost where the server counts cost; otherwise the distribution of durations."""
    if s.has("query_cost"):
        return Panel(
            "Query complexity: average cost per query",
            "timeseries",
            (Target(ratio(s.rate("query_cost"), s.rate("graphql_requests")), "cost per query"),),
            description="FraiseQL v2 counts the total cost of queries, not a distribution: this is the mean.",
        )
    return Panel(
        "Query duration distribution (no complexity metric in v1)",
        "heatmap",
        (Target(s.heatmap("query_latency"), "{{le}}", format="heatmap"),),
        description="FraiseQL v1 exports no query cost; query durations are the nearest true thing.",
    )


def _latency_description(s: Seed) -> str:
    values, _, _ = s.alert_line("HighLatency", "s")
    if not values:
        return "HTTP request duration."
    return (
        f"HTTP request duration; the {values[0]:g}s line is the HighLatency alert's threshold, which it applies"
        f" to the P99 of GraphQL query time ({s.series('query_latency').metric})."
    )


def operations_overview(s: Seed) -> Dashboard:
    operations = s.series("operations")
    top = Target(
        f"topk(10, {s.increase('operations', by=operations.grouping)})", legend=legend(operations.by), instant=True
    )
    traffic = row(
        "Traffic",
        Panel(
            "Request rate",
            "timeseries",
            (
                Target(s.rate("http_requests"), "HTTP requests/s"),
                Target(s.rate("graphql_requests"), "GraphQL queries/s"),
            ),
            unit="reqps",
            width=8,
        ),
        Panel(
            "Latency percentiles (P50, P95, P99)",
            "timeseries",
            tuple(Target(s.quantile(q, "http_latency"), f"P{round(q * 100)}") for q in (0.5, 0.95, 0.99)),
            description=_latency_description(s),
            unit="s",
            thresholds=thresholds_for(s.alert_line("HighLatency", "s")[0]),
            width=8,
        ),
        Panel(
            "Error rate",
            "timeseries",
            (Target(ratio(s.rate("graphql_errors"), s.rate("graphql_requests")), "errors / queries"),),
            description=" ".join(
                filter(None, ("Share of GraphQL queries that failed.", s.alert_line("HighErrorRate", "percentunit")[2]))
            ),
            unit="percentunit",
            thresholds=thresholds_for(s.alert_line("HighErrorRate")[0]),
            width=8,
        ),
    )
    operations_row = row(
        "Operations",
        Panel("Top 10 operations", "bargauge", (top,), description="Most frequent operations over the time range."),
        _operation_types(s),
        _execution_modes(s),
        _complexity(s),
    )
    backend = row(
        "Cache and database",
        Panel(
            "Cache hit rate",
            "timeseries",
            (Target(hit_ratio(s.rate("cache_hits"), s.rate("cache_misses")), "hit rate"),),
            description=s.alert_line("LowCacheHitRate", "percentunit")[2],
            unit="percentunit",
            thresholds=thresholds_for(s.alert_line("LowCacheHitRate")[0], bad=s.alert_line("LowCacheHitRate")[1]),
            min=0,
            max=1,
            width=8,
        ),
        Panel(
            "Database queries/sec",
            "timeseries",
            (Target(s.rate("database_queries"), "queries/s"),),
            unit="ops",
            width=8,
        ),
        Panel(
            "Active connections",
            "timeseries",
            (Target(s.total("pool_active"), "active"), Target(s.total("pool_total"), "pool size")),
            description="Database connections of FraiseQL's pool in use, against the pool's size.",
            width=8,
        ),
    )
    return s.dashboard(
        "Operations Overview",
        (traffic, operations_row, backend),
        "High-level health of the FraiseQL server: traffic, latency, errors, operations, cache and database.",
        anchor="http_requests",
    )


def _error_breakdown(s: Seed) -> str | None:
    """The role that breaks errors down: by type where the server types them, else by operation."""
    return s.first("errors_by_type", "operation_errors")


def _fingerprints(s: Seed, kind: str) -> Panel:
    errors = s.series(kind)
    target = Target(f"topk(10, {s.increase(kind, by=', '.join(errors.labels))})", legend(errors.labels), instant=True)
    if kind == "errors_by_type":
        return Panel(
            "Top 10 error fingerprints",
            "bargauge",
            (target,),
            description="Errors by type, code and operation over the time range.",
        )
    return Panel(
        "Top 10 failing operations (no error fingerprints in FraiseQL)",
        "bargauge",
        (target,),
        description="FraiseQL v2 does not fingerprint errors; the operations that failed most are the nearest "
        "true thing.",
    )


def _errors_by_status(s: Seed) -> Panel:
    """Failed HTTP answers by endpoint where one series labels both; else the 4xx and 5xx counters."""
    if s.has("http_errors"):
        errors = s.series("http_errors")
        return Panel(
            "Errors by endpoint",
            "timeseries",
            (Target(s.rate("http_errors", by=errors.grouping), legend(errors.by)),),
            description="HTTP 4xx and 5xx answers per second, by endpoint.",
            unit="reqps",
            stack=True,
        )
    return Panel(
        "Errors by status class (v2 has no endpoint label)",
        "timeseries",
        (Target(s.rate("http_4xx"), "4xx"), Target(s.rate("http_5xx"), "5xx")),
        description="FraiseQL v2 counts HTTP answers by class, not by endpoint (it serves GraphQL on one).",
        unit="reqps",
        stack=True,
    )


def _errors_by_type(s: Seed) -> tuple[Target, ...]:
    if s.has("errors_by_type"):
        errors = s.series("errors_by_type")
        return (Target(s.rate("errors_by_type", by=errors.grouping), legend(errors.by)),)
    kinds = (("parse_errors", "parse"), ("validation_errors", "validation"), ("execution_errors", "execution"))
    return tuple(Target(s.rate(role), label) for role, label in kinds if s.has(role))


def error_analysis(s: Seed) -> Dashboard:
    kind = _error_breakdown(s)
    fingerprints = _fingerprints(s, kind) if kind else None
    recent = None
    if kind:
        labels = ", ".join(s.series(kind).labels)
        recent = Target(f"{s.increase(kind, by=labels, window='1h')} > 0", format="table", instant=True)
    failing_share = ratio(s.rate("http_5xx"), s.rate("http_requests"))
    down = f"({s.own(m.UP)} == 0)"
    info = s.own(m.INFO)
    over_time = row(
        "Errors over time",
        Panel(
            "Error rate over time",
            "timeseries",
            (Target(s.rate("errors"), "GraphQL errors/s"), Target(s.rate("http_5xx"), "HTTP 5xx/s")),
            unit="reqps",
            width=8,
        ),
        Panel(
            "Error trends (hourly)",
            "timeseries",
            (Target(s.increase("errors", window="1h"), "errors per hour", interval="1h"),),
            draw="bars",
            width=8,
        ),
        Panel(
            "Errors now and a day earlier (no first/repeat split in FraiseQL)",
            "timeseries",
            (Target(s.rate("errors"), "now"), Target(s.rate("errors", offset="1d"), "a day earlier")),
            description="FraiseQL does not tell first errors from repeats; comparing with the same time "
            "yesterday shows what is new.",
            unit="reqps",
            width=8,
        ),
    )
    by_type = _errors_by_type(s)
    breakdown = row(
        "Breakdown",
        fingerprints,
        Panel("Errors by type", "timeseries", by_type, unit="reqps", stack=True) if by_type else None,
        _errors_by_status(s),
        Panel(
            "Failing checks by severity",
            "timeseries",
            (
                Target(
                    # max by check first: a check counts once, whichever watcher of a cluster reports it
                    f"count by (severity) (max by (check, severity) ({down} * on(job, instance, check)"
                    f" group_left(severity) {info}))",
                    "{{severity}}",
                ),
            ),
            description="FraiseQL errors carry no severity; the checks of fraiseql-check do: how many of them "
            "fail now, by severity.",
            draw="bars",
            stack=True,
        ),
    )
    impact = row(
        "Impact",
        Panel(
            "Operations with errors in the last hour",
            "table",
            (recent,),
            description="The nearest true thing to a list of recent errors: FraiseQL exports counts, not events.",
            width=8,
        )
        if recent
        else None,
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
    )
    return s.dashboard(
        "Error Analysis",
        (over_time, breakdown, impact),
        "Errors of the FraiseQL server, and the checks that fail, to investigate and resolve them.",
        anchor="http_requests",
    )


def _sessions(s: Seed) -> Panel | None:
    """Clients: WebSocket sessions where counted; else requests by endpoint."""
    if s.has("ws_connections"):
        sessions = s.series("ws_connections")
        return Panel(
            "WebSocket sessions opened (metrics count no users or tenants)",
            "timeseries",
            (Target(s.rate("ws_connections", by=sessions.grouping), legend(sessions.by)),),
            description="FraiseQL's metrics carry no user or tenant ids (no PII); WebSocket sessions opened "
            "are the nearest count of clients.",
            stack=True,
        )
    requests = s.series("http_requests")
    if not requests.by:
        return None
    return Panel(
        "Requests by endpoint (metrics count no users or tenants)",
        "timeseries",
        (Target(s.rate("http_requests", by=requests.grouping), legend(requests.by)),),
        description="FraiseQL's metrics carry no user or tenant ids (no PII); requests by endpoint show the "
        "activity itself.",
        unit="reqps",
        stack=True,
    )


def _per_operation(s: Seed) -> Target:
    """Operations over the time range, by type too where the same series labels it."""
    operations = s.series("operations")
    by = operations.by
    if s.has("operation_types") and s.series("operation_types").metric == operations.metric:
        by = (*s.series("operation_types").by, *by)
    return Target(f"sort_desc({s.increase('operations', by=', '.join(by))})", format="table", instant=True)


def _query_mix(s: Seed) -> Panel | None:
    """What the queries cost where counted; else queries beside mutations."""
    if s.has("query_cost"):
        return Panel(
            "Query complexity: cost per second",
            "timeseries",
            (Target(s.rate("query_cost"), "cost/s"),),
            description="The total cost of the queries served, per second (FraiseQL v2 counts no distribution).",
        )
    if s.has("mutations"):
        return Panel(
            "Queries and mutations (no complexity metric in v1)",
            "timeseries",
            (Target(s.rate("graphql_requests"), "queries"), Target(s.rate("mutations"), "mutations")),
            unit="reqps",
        )
    return None


def user_activity(s: Seed) -> Dashboard:
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
    return s.dashboard(
        "User Activity",
        (
            row(
                "Activity",
                _sessions(s),
                Panel(
                    "Requests per operation (metrics count no users)",
                    "table",
                    (_per_operation(s),),
                    description="Operations over the time range; per-user counts are in the audit trail "
                    "(fraiseql-check audit report).",
                ),
                Panel(
                    "Query patterns (heatmap of durations)",
                    "heatmap",
                    (Target(s.heatmap("query_latency"), "{{le}}", format="heatmap"),),
                ),
                _query_mix(s),
            ),
            row(
                "Users, from the audit trail",
                audited,
                refused,
                Panel(
                    "Usage trend: this week and last (no new-user metric)",
                    "timeseries",
                    (
                        Target(s.rate("http_requests", window="1h"), "this week"),
                        Target(s.rate("http_requests", window="1h", offset="1w"), "a week earlier"),
                    ),
                    description="No metric counts new users; week-over-week traffic shows growth.",
                    unit="reqps",
                ),
                Panel(
                    "Instance comparison (no tenant label in metrics)",
                    "timeseries",
                    (Target(s.rate("http_requests", by="instance"), "{{instance}}"),),
                    description="Metrics carry no tenant; requests per FraiseQL instance compare the servers.",
                    unit="reqps",
                ),
            ),
        ),
        "What clients do with the FraiseQL server, from its metrics and from the audit checks.",
        anchor="http_requests",
    )
