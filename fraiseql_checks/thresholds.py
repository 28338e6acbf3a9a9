"""The thresholds the shipped checks judge by: one definition each.

The checks read them (``config.threshold(name)``), the dashboards draw them, the
config overrides them (``thresholds = {"cache.ping_max_seconds" = 0.1}``) and the
docs list them. A name the config gives that is declared nowhere is an error, so a
misspelt override cannot be silently ignored. Plugins declare more with
``parser.addthreshold(Threshold(...))`` in ``fraiseql_addoption``.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Threshold:
    """One threshold: its name (``suite.what_unit``), default, unit and meaning."""

    name: str
    default: float
    unit: str
    help: str


SHIPPED: tuple[Threshold, ...] = (
    # host (checks/host)
    Threshold("host.disk_free_min_percent", 15, "%", "free disk below this fails check_disk_space"),
    Threshold(
        "host.memory_used_max_percent", 85, "%", "memory in use above this for the window fails check_memory_usage"
    ),
    Threshold("host.memory_window_seconds", 600, "s", "how long memory must stay above its bound (seed: 10 minutes)"),
    Threshold("host.cpu_used_max_percent", 80, "%", "CPU busy above this for the window fails check_cpu_usage"),
    Threshold("host.cpu_window_seconds", 300, "s", "how long the CPU must stay above its bound (seed: 5 minutes)"),
    # FraiseQL and GraphQL (checks/health)
    Threshold("graphql.latency_max_seconds", 1.0, "s", "the smoke query slower than this fails check_graphql_answers"),
    # PostgreSQL (checks/health)
    Threshold("database.answer_max_seconds", 1.0, "s", "select 1 slower than this fails check_database_answers"),
    Threshold(
        "database.connections_max_percent", 90, "%", "connections in use above this share of max_connections fail"
    ),
    Threshold("database.transaction_max_seconds", 300, "s", "a transaction open longer than this fails"),
    Threshold("database.idle_in_transaction_max_seconds", 60, "s", "a session idle in a transaction longer fails"),
    Threshold("database.slow_statement_ms", 100, "ms", "a statement slower than this on average counts as slow"),
    Threshold("database.slow_calls_max_percent", 10, "%", "slow statements above this share of calls fail"),
    Threshold("database.rollback_max_percent", 5, "%", "rollbacks above this share of transactions fail"),
    # Redis (checks/health)
    Threshold("cache.ping_max_seconds", 0.25, "s", "PING slower than this fails check_cache_answers"),
    Threshold("cache.memory_max_percent", 85, "%", "memory above this share of maxmemory fails"),
    Threshold("cache.evictions_max_per_second", 1, "/s", "evictions above this rate fail"),
    Threshold("cache.eviction_sample_seconds", 1.0, "s", "how long check_cache_evictions samples evictions"),
    Threshold("cache.hit_ratio_min_percent", 75, "%", "a hit ratio below this fails check_cache_hit_ratio"),
    # audit (checks/audit)
    Threshold("audit.max_lag_seconds", 5, "s", "the newest audit row older than this fails (writes not audited)"),
    Threshold("audit.failed_logins_max", 10, "", "more failed logins than this within any 5 minutes fail"),
    Threshold("audit.permission_denied_max", 5, "", "more permission-denied events within any 5 minutes fail"),
)
