"""The seed's data dashboards: Cache Performance (8 panels), Database Health (10), Compliance & Audit (8).

FraiseQL's series cover its own cache counters and connection pool; Redis,
PostgreSQL and the audit trail are seen through the values the shipped checks
record (``checks/health``, ``checks/audit``), with the thresholds those checks
assert (including the config's ``thresholds`` overrides).
"""

from __future__ import annotations

from fraiseql_checks import metrics as m
from fraiseql_checks.dashboards.model import Dashboard, Panel, Row, Target, thresholds_for
from fraiseql_checks.dashboards.queries import Re, one_of, select
from fraiseql_checks.dashboards.seed import WATCHER, Seed, hit_ratio, ratio
from fraiseql_checks.dashboards.suites import STATUS_MAPPINGS

#: What the shipped audit checks record (``checks/audit/check_audit.py``).
AUDIT_VALUES = (
    "audit_lag_seconds",
    "audit_write_delay_seconds",
    "failed_logins",
    "permission_denied_events",
    "admin_actions",
    "unattributed_admin_actions",
    "permission_changes",
    "permission_changes_without_state",
    "audit_chain_events_checked",
    "audit_chain_broken_links",
    "unexpected_audit_writers",
)
#: The suite of the shipped audit checks (their folder).
AUDIT_SUITE = "audit"


def _cache_hit_ratio(s: Seed, by: str = "") -> str:
    if s.v1:
        return hit_ratio(s.rate("fraiseql_cache_hits_total", by=by), s.rate("fraiseql_cache_misses_total", by=by))
    return hit_ratio(s.rate("fraiseql_cache_hits"), s.rate("fraiseql_cache_misses"))


def cache_performance(s: Seed) -> Dashboard:
    hit_min = s.threshold("cache.hit_ratio_min_percent", 75) / 100
    if s.v1:
        by_type: tuple[Target, ...] = (Target(_cache_hit_ratio(s, by="cache_type"), "{{cache_type}}"),)
        misses = Target(s.rate("fraiseql_cache_misses_total", by="cache_type"), "{{cache_type}}")
    else:
        by_type = (
            Target(_cache_hit_ratio(s), "result cache"),
            Target(hit_ratio(s.rate("fraiseql_apq_hits_total"), s.rate("fraiseql_apq_misses_total")), "APQ"),
            Target(s.value("hit_ratio", "check_cache_hit_ratio"), "Redis keyspace"),
        )
        misses = Target(s.rate("fraiseql_cache_misses"), "result cache misses")
    coherent = f"{s.own(m.UP)} and on(job, instance, check) {s.own(m.VALUE, name='coherency_rows')}"
    effectiveness = Row(
        "Effectiveness",
        (
            Panel(
                "Overall hit rate",
                "stat",
                (Target(_cache_hit_ratio(s)),),
                description="FraiseQL's result cache. The LowCacheHitRate alert fires below 75%.",
                unit="percentunit",
                thresholds=thresholds_for([hit_min], bad="below"),
                width=6,
            ),
            Panel(
                "Hit rate by cache type",
                "timeseries",
                by_type,
                description="v2 has no cache_type label: its result cache and APQ store are shown apart, with "
                "Redis' own keyspace hit ratio (check_cache_hit_ratio)."
                if not s.v1
                else "Hit rate per cache_type label.",
                unit="percentunit",
                thresholds=thresholds_for([hit_min], bad="below"),
                min=0,
                max=1,
                width=12,
            ),
            Panel(
                "Cache coherency %",
                "stat",
                (Target(f"avg({coherent})"),),
                description="Share of coherency checks (fraiseql_checks.coherency.assert_coherent, see "
                "docs/examples/check_coherency.py) whose last run found GraphQL and SQL in agreement. "
                "Empty until such a check runs in watch mode.",
                unit="percentunit",
                thresholds=thresholds_for([1.0], bad="below"),
                width=6,
            ),
        ),
    )
    redis = Row(
        "Redis",
        (
            Panel(
                "Operation latency: Redis round trip (PING)",
                "timeseries",
                (Target(s.value("ping_seconds", "check_cache_answers"), "PING"),),
                description="No one times cache get/set/delete; check_cache_answers times a PING round trip.",
                unit="s",
                thresholds=thresholds_for([s.threshold("cache.ping_max_seconds", 0.25)]),
            ),
            Panel(
                "Cache size trends",
                "timeseries",
                (Target(s.value("memory_used_bytes", "check_cache_memory"), "Redis used memory"),),
                unit="bytes",
            ),
            Panel(
                "Evictions per second (no per-entity invalidation metric)",
                "timeseries",
                (Target(s.value("evictions_per_second", "check_cache_evictions"), "evictions/s"),),
                description="FraiseQL does not count invalidations per entity; Redis evictions (keys pushed out "
                "by memory pressure) are what can be measured.",
                thresholds=thresholds_for([s.threshold("cache.evictions_max_per_second", 1)]),
            ),
            Panel(
                "Misses per second (invalidations show here)",
                "timeseries",
                (misses,),
                description="No metric counts cascading invalidations; every invalidated entry is a miss on its "
                "next read, so bursts of misses are where cascades show.",
            ),
            Panel(
                "Memory usage",
                "timeseries",
                (Target(s.value("memory_used_ratio", "check_cache_memory"), "of maxmemory"),),
                unit="percentunit",
                thresholds=thresholds_for([s.threshold("cache.memory_max_percent", 85) / 100]),
                min=0,
                max=1,
                width=24,
            ),
        ),
    )
    return s.dashboard(
        "Cache Performance",
        (effectiveness, redis),
        "Cache health and effectiveness: FraiseQL's cache counters and the Redis cache checks.",
        anchor="fraiseql_http_requests_total",
    )


def database_health(s: Seed) -> Dashboard:
    pool_max = s.threshold("database.connections_max_percent", 90) / 100
    if s.v1:
        active, idle, total = (
            "fraiseql_db_connections_active",
            "fraiseql_db_connections_idle",
            "fraiseql_db_connections_total",
        )
        wait = Panel(
            "Connections in use on PostgreSQL (no wait metric in v1)",
            "timeseries",
            (Target(s.value("connections_used_ratio", "check_database_connections"), "of max_connections"),),
            description="FraiseQL v1 does not count requests waiting for a connection; PostgreSQL's own "
            "connection use (check_database_connections) shows when waiting starts.",
            unit="percentunit",
            thresholds=thresholds_for([pool_max]),
            width=8,
        )
        slow = Panel(
            "Slow statement share",
            "timeseries",
            (Target(s.value("slow_call_ratio", "check_slow_statements"), "calls of slow statements"),),
            description="Share of statement calls belonging to statements averaging over "
            f"{s.threshold('database.slow_statement_ms', 100):g} ms (pg_stat_statements, check_slow_statements).",
            unit="percentunit",
            thresholds=thresholds_for([s.threshold("database.slow_calls_max_percent", 10) / 100]),
        )
        top = Panel(
            "Busiest tables (no per-statement metric in v1)",
            "table",
            (
                Target(
                    f"topk(10, {s.increase('fraiseql_db_queries_total', by='table_name, query_type')})",
                    format="table",
                    instant=True,
                ),
            ),
            description="FraiseQL v1 times statements without naming them; the tables it queries most are the "
            "nearest true thing.",
        )
        durations = "fraiseql_db_query_duration_seconds"
        breakdown = Target(s.increase("fraiseql_db_queries_total", by="query_type"), "{{query_type}}", instant=True)
        pool_size: tuple[Target, ...] = (Target(f"sum({s.fq(total)})", "connections"),)
        errors = Target(s.rate("fraiseql_errors_total", by="error_type"), "{{error_type}}")
    else:
        active, idle, total = (
            "fraiseql_db_pool_connections_active",
            "fraiseql_db_pool_connections_idle",
            "fraiseql_db_pool_connections_total",
        )
        wait = Panel(
            "Connection wait: requests waiting for a connection",
            "timeseries",
            (Target(f"sum({s.fq('fraiseql_db_pool_requests_waiting')})", "waiting"),),
            description="FraiseQL counts requests waiting for a pool connection, not how long they wait.",
            width=8,
        )
        slow_ms = s.threshold("database.slow_statement_ms", 100)
        slow = Panel(
            "Slow query count",
            "timeseries",
            (Target(f"count({s.fq('fraiseql_db_query_mean_exec_seconds')} > {slow_ms / 1000:g})", "statements"),),
            description=f"Statements whose mean execution time is over {slow_ms:g} ms (pg_stat_statements).",
        )
        top = Panel(
            "Top 10 slow queries",
            "table",
            (
                Target(
                    f"topk(10, max by (queryid, query) ({s.fq('fraiseql_db_query_mean_exec_seconds')}))",
                    format="table",
                    instant=True,
                ),
            ),
            description="Mean execution time per statement, from pg_stat_statements.",
            unit="s",
        )
        durations = "fraiseql_database_query_duration_seconds"
        breakdown = Target(
            f"topk(10, max by (query) ({s.fq('fraiseql_db_query_exec_seconds')}))", "{{query}}", instant=True
        )
        pool_size = (
            Target(f"sum({s.fq(total)})", "pool size"),
            Target(f"sum({s.fq('fraiseql_pool_recommended_size')})", "recommended size"),
            Target(s.increase("fraiseql_pool_tuning_adjustments_total", window="5m"), "adjustments per 5 min"),
        )
        errors = Target(s.rate("fraiseql_query_errors_total", by="operation"), "{{operation}}")
    pool = Row(
        "Connection pool",
        (
            Panel(
                "Pool utilization",
                "timeseries",
                (Target(ratio(f"sum({s.fq(active)})", f"sum({s.fq(total)})"), "in use"),),
                description="The DatabasePoolExhausted alert fires above 90%.",
                unit="percentunit",
                thresholds=thresholds_for([pool_max]),
                min=0,
                max=1,
                width=8,
            ),
            Panel(
                "Active vs idle connections",
                "timeseries",
                (Target(f"sum({s.fq(active)})", "active"), Target(f"sum({s.fq(idle)})", "idle")),
                stack=True,
                width=8,
            ),
            wait,
            Panel(
                "Pool size (no connection-creation metric)",
                "timeseries",
                pool_size,
                description="FraiseQL does not count connections opened; the pool's size (and v2's tuning of it) "
                "is where new connections show.",
            ),
            Panel(
                "Query errors",
                "timeseries",
                (errors,),
                unit="reqps",
                stack=True,
            ),
        ),
    )
    statements = Row(
        "Queries and transactions",
        (
            slow,
            top,
            Panel(
                "Query duration (P50, P95, P99; no transaction metric)",
                "timeseries",
                (
                    *(Target(s.quantile(q, durations), f"query P{round(q * 100)}") for q in (0.5, 0.95, 0.99)),
                    Target(s.value("oldest_transaction_seconds", "check_long_transactions"), "oldest open transaction"),
                ),
                description="FraiseQL times queries, not transactions; check_long_transactions adds the age of the "
                "oldest open transaction.",
                unit="s",
            ),
            Panel(
                "Rollback rate",
                "timeseries",
                (Target(s.value("rollback_ratio", "check_rollback_ratio"), "rolled back"),),
                description="Rolled-back transactions among all (pg_stat_database, check_rollback_ratio).",
                unit="percentunit",
                thresholds=thresholds_for([s.threshold("database.rollback_max_percent", 5) / 100]),
            ),
            Panel("Query execution breakdown", "piechart", (breakdown,), description="Where execution time goes."),
        ),
    )
    return s.dashboard(
        "Database Health",
        (pool, statements),
        "Database performance and stability: FraiseQL's pool and statements, and the PostgreSQL checks.",
        anchor="fraiseql_http_requests_total",
    )


def compliance_audit(s: Seed) -> Dashboard:
    audit_lag = s.threshold("audit.max_lag_seconds", 5)
    figures = select(m.VALUE.name, WATCHER, name=Re(one_of(AUDIT_VALUES)))
    admin = select(m.VALUE.name, WATCHER, name=Re(one_of(("admin_actions", "unattributed_admin_actions"))))
    if s.v1:
        access = Target(s.rate("fraiseql_graphql_queries_total", by="operation_type"), "{{operation_type}}")
        rejected = Target(
            s.increase("fraiseql_http_requests_total", window="5m", status=Re("401|403")), "HTTP 401/403 per 5 min"
        )
    else:
        access = Target(s.rate("fraiseql_query_duration_seconds_count", by="operation"), "{{operation}}")
        rejected = Target(s.increase("fraiseql_jwt_replay_rejected_total", window="5m"), "replayed tokens per 5 min")
    status = (
        f"min by (check) ({s.own(m.UP)} * on(job, instance, check) group_left() {s.own(m.INFO, suite=AUDIT_SUITE)})"
    )
    trail = Row(
        "Audit trail",
        (
            Panel(
                "Audit figures from the last runs (events are in the audit report)",
                "table",
                (Target(figures, format="table", instant=True),),
                description="Metrics cannot list events; these are the counts the audit checks found on their "
                "last run. The events themselves: fraiseql-check audit report --since 24h -o report.html.",
                width=24,
            ),
            Panel(
                "Events by type (last 24h)",
                "timeseries",
                (
                    Target(s.value("admin_actions", "check_admin_actions_attributed"), "admin actions"),
                    Target(s.value("permission_changes", "check_permission_changes_have_states"), "permission changes"),
                ),
                draw="bars",
                stack=True,
                width=8,
            ),
            Panel(
                "Admin actions (last 24h)",
                "table",
                (Target(admin, format="table", instant=True),),
                description="Admin actions, and those that name no actor (check_admin_actions_attributed).",
                width=8,
            ),
            Panel(
                "Permission changes",
                "timeseries",
                (
                    Target(s.value("permission_changes", "check_permission_changes_have_states"), "changes"),
                    Target(
                        s.value("permission_changes_without_state", "check_permission_changes_have_states"),
                        "without before/after state",
                    ),
                ),
                width=8,
            ),
        ),
    )
    access_row = Row(
        "Access and compliance",
        (
            Panel(
                "Data access patterns (queries per operation)",
                "timeseries",
                (access,),
                description="Reads as FraiseQL counts them; the audit trail holds who read what.",
                unit="reqps",
                stack=True,
            ),
            Panel(
                "Failed access attempts",
                "timeseries",
                (
                    Target(s.value("failed_logins", "check_failed_logins"), "failed logins (peak per 5 min)"),
                    Target(
                        s.value("permission_denied_events", "check_permission_denied_spike"),
                        "permission denied (peak per 5 min)",
                    ),
                    rejected,
                ),
            ),
            Panel(
                "Compliance status",
                "stat",
                (Target(status, "{{check}}", instant=True),),
                description=f"The last result of every audit check (suite {AUDIT_SUITE!r}).",
                thresholds=thresholds_for([1], bad="below"),
                mappings=STATUS_MAPPINGS,
                no_value="no audit check runs",
                options={"textMode": "value_and_name"},
            ),
            Panel(
                "Audit event lag",
                "timeseries",
                (
                    Target(s.value("audit_lag_seconds", "check_audit_log_lag"), "age of the newest event"),
                    Target(s.value("audit_write_delay_seconds", "check_audit_log_lag"), "write delay (max)"),
                ),
                description="The AuditLogLag alert fires when events are written more than 5s late.",
                unit="s",
                thresholds=thresholds_for([audit_lag]),
            ),
        ),
    )
    return s.dashboard(
        "Compliance & Audit",
        (trail, access_row),
        "Audit trails and compliance: what the audit checks find in FraiseQL's audit tables.",
        anchor="fraiseql_http_requests_total",
    )
