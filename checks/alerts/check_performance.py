"""The seed's performance alerts (1-4): errors, latency, slow database queries, cache hits.

They read FraiseQL's own metrics, whose names differ between FraiseQL v2 (the
default profile) and v1, so each names its series by role (``{{graphql_errors}}``),
which every target profile expands to its own series (``profiles.py``). Run as
checks they ask Prometheus (``PROMETHEUS_URL``); ``fraiseql-check generate alerts``
writes them to ``alerts/performance.rules.yml`` (and ``alerts/fraiseql-v1/``).
Which series each reads, and why: docs/alert-rules.md.
"""

from __future__ import annotations

from fraiseql_checks import alert


@alert(
    expr="sum by (job) (rate({{graphql_errors}}[5m])) / sum by (job) (rate({{graphql_requests}}[5m])) > {{threshold}}",
    threshold=0.05,
    depends_on=["database"],
    for_="5m",
    severity="warning",
    summary="GraphQL error rate above 5% on {{ $labels.job }}",
    description="{{ $value | humanizePercentage }} of the GraphQL queries on {{ $labels.job }} failed over the"
    " last 5 minutes (above 5% for 5 minutes). Check the error types, then the root cause.",
    runbook="docs/runbooks/HighErrorRate.md",
)
def check_high_error_rate():
    """More than 5% of GraphQL queries fail, for 5 minutes (seed alert 1)."""


@alert(
    expr="histogram_quantile(0.99, sum by (job, le) (rate({{query_latency.bucket}}[5m]))) > {{threshold}}",
    threshold=1,
    depends_on=["database"],
    for_="5m",
    severity="warning",
    summary="GraphQL p99 latency above 1s on {{ $labels.job }}",
    description="The slowest 1% of GraphQL queries on {{ $labels.job }} took more than"
    " {{ $value | humanizeDuration }} over the last 5 minutes (p99 above 1s for 5 minutes)."
    " Check slow queries and the cache's effectiveness.",
    runbook="docs/runbooks/HighLatency.md",
)
def check_high_latency():
    """The 99th percentile of GraphQL query time is above 1 second, for 5 minutes (seed alert 2)."""


@alert(
    expr="histogram_quantile(0.9, sum by (job, le) (rate({{database_latency.bucket}}[5m]))) > {{threshold}}",
    threshold=0.1,
    depends_on=["database"],
    for_="5m",
    severity="warning",
    summary="More than 10% of database queries slower than 100ms on {{ $labels.job }}",
    description="The 90th percentile of database query time on {{ $labels.job }} is"
    " {{ $value | humanizeDuration }} over the last 5 minutes: more than 10% of the queries take longer than"
    " 100ms (for 5 minutes). Check the database's load and the slow statements' plans.",
    runbook="docs/runbooks/SlowQueryRate.md",
)
def check_slow_query_rate():
    """More than 10% of database queries take longer than 100ms, for 5 minutes (seed alert 3)."""


@alert(
    expr="sum by (job) (rate({{cache_hits}}[10m]))"
    " / (sum by (job) (rate({{cache_hits}}[10m])) + sum by (job) (rate({{cache_misses}}[10m]))) < {{threshold}}",
    threshold=0.75,
    fires="below",
    depends_on=["cache"],
    for_="10m",
    severity="info",
    summary="Cache hit rate below 75% on {{ $labels.job }}",
    description="Only {{ $value | humanizePercentage }} of the cache lookups on {{ $labels.job }} hit over the last"
    " 10 minutes (below 75% for 10 minutes). Review the cache strategy and what invalidates it.",
    runbook="docs/runbooks/LowCacheHitRate.md",
)
def check_low_cache_hit_rate():
    """Fewer than 75% of cache lookups hit, for 10 minutes (seed alert 4)."""
