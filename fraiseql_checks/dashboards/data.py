"""The seed's data dashboards: Cache Performance (8 panels), Database Health (10), Compliance & Audit (8).

FraiseQL's series (named by role, ``profiles.py``) cover its own cache counters and
connection pool; Redis, PostgreSQL and the audit trail are seen through the values
the shipped checks record (``checks/health``, ``checks/audit``), with the thresholds
those checks assert (including the config's ``thresholds`` overrides). A panel
whose roles the profile lacks is left out or replaced by the nearest true thing.
"""

from __future__ import annotations

from fraiseql_checks import metrics as m
from fraiseql_checks.dashboards.model import Dashboard, Panel, Row, Target, thresholds_for
from fraiseql_checks.dashboards.seed import Seed, hit_ratio, legend, ratio, row
from fraiseql_checks.dashboards.suites import STATUS_MAPPINGS

#: The suite of the shipped audit checks (their folder).
AUDIT_SUITE = "audit"


def _cache_hit_ratio(s: Seed, by: str = "") -> str:
    return hit_ratio(s.rate("cache_hits", by=by), s.rate("cache_misses", by=by))


def cache_performance(s: Seed) -> Dashboard:
    hit_min = s.threshold("cache.hit_ratio_min_percent", 75) / 100
    hits, misses_of = s.series("cache_hits"), s.series("cache_misses")
    if hits.by:  # the counters name the cache they count
        by_type: tuple[Target, ...] = (Target(_cache_hit_ratio(s, by=hits.grouping), legend(hits.by)),)
        misses = Target(s.rate("cache_misses", by=misses_of.grouping), legend(misses_of.by))
        by_type_description = f"Hit rate per {hits.grouping} label."
    else:
        apq = (
            Target(hit_ratio(s.rate("apq_hits"), s.rate("apq_misses")), "APQ")
            if s.has("apq_hits") and s.has("apq_misses")
            else None
        )
        by_type = tuple(
            target
            for target in (
                Target(_cache_hit_ratio(s), "result cache"),
                apq,
                Target(s.value("hit_ratio", "check_cache_hit_ratio"), "Redis keyspace"),
            )
            if target is not None
        )
        misses = Target(s.rate("cache_misses"), "result cache misses")
        by_type_description = (
            "v2 has no cache_type label: its result cache and APQ store are shown apart, with "
            "Redis' own keyspace hit ratio (check_cache_hit_ratio)."
        )
    coherent = f"{s.own(m.UP)} and on(job, instance, check) {s.own(m.VALUE, name='coherency_rows')}"
    effectiveness = Row(
        "Effectiveness",
        (
            Panel(
                "Overall hit rate",
                "stat",
                (Target(_cache_hit_ratio(s)),),
                description=" ".join(
                    filter(None, ("FraiseQL's result cache.", s.alert_line("LowCacheHitRate", "percentunit")[2]))
                ),
                unit="percentunit",
                thresholds=thresholds_for(s.alert_line("LowCacheHitRate")[0], bad=s.alert_line("LowCacheHitRate")[1]),
                width=6,
            ),
            Panel(
                "Hit rate by cache type",
                "timeseries",
                by_type,
                description=by_type_description,
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
        anchor="http_requests",
    )


def _connection_wait(s: Seed, pool_max: float) -> Panel:
    """Requests waiting for a connection where counted; else PostgreSQL's connection use."""
    if s.has("pool_waiting"):
        return Panel(
            "Connection wait: requests waiting for a connection",
            "timeseries",
            (Target(s.total("pool_waiting"), "waiting"),),
            description="FraiseQL counts requests waiting for a pool connection, not how long they wait.",
            width=8,
        )
    return Panel(
        "Connections in use on PostgreSQL (no wait metric in v1)",
        "timeseries",
        (Target(s.value("connections_used_ratio", "check_database_connections"), "of max_connections"),),
        description="FraiseQL v1 does not count requests waiting for a connection; PostgreSQL's own "
        "connection use (check_database_connections) shows when waiting starts.",
        unit="percentunit",
        thresholds=thresholds_for([pool_max]),
        width=8,
    )


def _slow_statements(s: Seed) -> Panel:
    """Statements slower than the threshold: from pg_stat_statements where FraiseQL exports it, else the check's."""
    slow_ms = s.threshold("database.slow_statement_ms", 100)
    if s.has("statement_mean_time"):
        return Panel(
            "Slow query count",
            "timeseries",
            (Target(f"count({s.fq('statement_mean_time')} > {slow_ms / 1000:g})", "statements"),),
            description=f"Statements whose mean execution time is over {slow_ms:g} ms (pg_stat_statements).",
        )
    return Panel(
        "Slow statement share",
        "timeseries",
        (Target(s.value("slow_call_ratio", "check_slow_statements"), "calls of slow statements"),),
        description="Share of statement calls belonging to statements averaging over "
        f"{slow_ms:g} ms (pg_stat_statements, check_slow_statements).",
        unit="percentunit",
        thresholds=thresholds_for([s.threshold("database.slow_calls_max_percent", 10) / 100]),
    )


def _top_statements(s: Seed) -> Panel | None:
    """The slowest statements where FraiseQL names them; else the busiest tables."""
    if s.has("statement_mean_time"):
        mean = s.series("statement_mean_time")
        return Panel(
            "Top 10 slow queries",
            "table",
            (
                Target(
                    f"topk(10, max by ({mean.grouping}) ({s.fq('statement_mean_time')}))",
                    format="table",
                    instant=True,
                ),
            ),
            description="Mean execution time per statement, from pg_stat_statements.",
            unit="s",
        )
    if s.has("table_queries"):
        tables = s.series("table_queries")
        return Panel(
            "Busiest tables (no per-statement metric in v1)",
            "table",
            (Target(f"topk(10, {s.increase('table_queries', by=tables.grouping)})", format="table", instant=True),),
            description="FraiseQL v1 times statements without naming them; the tables it queries most are the "
            "nearest true thing.",
        )
    return None


def _execution_breakdown(s: Seed) -> Target | None:
    if s.has("statement_time"):
        time = s.series("statement_time")
        expr = f"topk(10, max by ({time.grouping}) ({s.fq('statement_time')}))"
        return Target(expr, legend(time.by), instant=True)
    if s.has("statement_types"):
        types = s.series("statement_types")
        return Target(s.increase("statement_types", by=types.grouping), legend(types.by), instant=True)
    return None


def _pool_size(s: Seed) -> tuple[Target, ...]:
    """The pool's size, and the auto-tuner's recommendation and resizes where it runs."""
    if not s.has("pool_recommended_size"):
        return (Target(s.total("pool_total"), "connections"),)
    targets = [Target(s.total("pool_total"), "pool size"), Target(s.total("pool_recommended_size"), "recommended size")]
    if s.has("pool_adjustments"):
        targets.append(Target(s.increase("pool_adjustments", window="5m"), "adjustments per 5 min"))
    return tuple(targets)


def database_health(s: Seed) -> Dashboard:
    pool_max = s.threshold("database.connections_max_percent", 90) / 100
    active, idle, total = (s.total(role) for role in ("pool_active", "pool_idle", "pool_total"))
    kind = s.first("errors_by_type", "operation_errors")
    errors = None
    if kind:
        errors_of = s.series(kind)
        errors = Panel(
            "Query errors",
            "timeseries",
            (Target(s.rate(kind, by=errors_of.grouping), legend(errors_of.by)),),
            unit="reqps",
            stack=True,
        )
    breakdown = _execution_breakdown(s)
    pool = row(
        "Connection pool",
        Panel(
            "Pool utilization",
            "timeseries",
            (Target(ratio(active, total), "in use"),),
            description=s.alert_line("DatabasePoolExhausted", "percentunit")[2],
            unit="percentunit",
            thresholds=thresholds_for(s.alert_line("DatabasePoolExhausted")[0]),
            min=0,
            max=1,
            width=8,
        ),
        Panel(
            "Active vs idle connections",
            "timeseries",
            (Target(active, "active"), Target(idle, "idle")),
            stack=True,
            width=8,
        ),
        _connection_wait(s, pool_max),
        Panel(
            "Pool size (no connection-creation metric)",
            "timeseries",
            _pool_size(s),
            description="FraiseQL does not count connections opened; the pool's size (and v2's tuning of it) "
            "is where new connections show.",
        ),
        errors,
    )
    statements = row(
        "Queries and transactions",
        _slow_statements(s),
        _top_statements(s),
        Panel(
            "Query duration (P50, P95, P99; no transaction metric)",
            "timeseries",
            (
                *(Target(s.quantile(q, "database_latency"), f"query P{round(q * 100)}") for q in (0.5, 0.95, 0.99)),
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
        Panel("Query execution breakdown", "piechart", (breakdown,), description="Where execution time goes.")
        if breakdown
        else None,
    )
    return s.dashboard(
        "Database Health",
        (pool, statements),
        "Database performance and stability: FraiseQL's pool and statements, and the PostgreSQL checks.",
        anchor="http_requests",
    )


def compliance_audit(s: Seed) -> Dashboard:
    audit_lag = s.threshold("audit.max_lag_seconds", 5)
    # whatever the audit suite's checks record, and whatever check_admin_actions_attributed records:
    # the checks own those names, the dashboard lists none
    in_suite = f"on(job, instance, check) group_left() {s.own(m.INFO, suite=AUDIT_SUITE)}"
    figures = f"{s.own(m.VALUE)} * {in_suite}"
    admin = s.values_of("check_admin_actions_attributed")
    reads = s.first("operation_types", "operations") or "operations"
    access = Target(s.rate(reads, by=s.series(reads).grouping), legend(s.series(reads).by))
    rejected = None
    if s.has("jwt_replays_rejected"):
        rejected = Target(s.increase("jwt_replays_rejected", window="5m"), "replayed tokens per 5 min")
    elif s.has("http_denied"):
        rejected = Target(s.increase("http_denied", window="5m"), "HTTP 401/403 per 5 min")
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
                    *((rejected,) if rejected else ()),
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
                description=" ".join(
                    filter(
                        None, (f"check_audit_log_lag fails above {audit_lag:g}s.", s.alert_line("AuditLogLag", "s")[2])
                    )
                ),
                unit="s",
                thresholds=thresholds_for([audit_lag]),
            ),
        ),
    )
    return s.dashboard(
        "Compliance & Audit",
        (trail, access_row),
        "Audit trails and compliance: what the audit checks find in FraiseQL's audit tables.",
        anchor="http_requests",
    )
