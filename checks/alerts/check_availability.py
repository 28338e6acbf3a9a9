"""The seed's availability alerts (5-8): the pool, the database, the cache, FraiseQL's health.

FraiseQL exports its pool's use (``{{pool_active}}``, ``{{pool_total}}``: roles,
named differently by v2 and v1, see ``profiles.py``); it exports
nothing that says "the database (or Redis) does not answer" or "/health is not
healthy", so those three read what this tool's own health checks export from
watch mode: ``fraiseql_check_up`` of the check that probes each, unless a
maintenance window silences it (``rules.failing_expr``, which
FraiseQLCheckFailing uses too). Which series each reads, and why:
docs/alert-rules.md.
"""

from __future__ import annotations

from fraiseql_checks import alert
from fraiseql_checks.alerting.rules import failing_expr


@alert(
    expr="{{pool_active}} / {{pool_total}} > {{threshold}}",
    threshold=0.9,
    depends_on=["database"],
    for_="2m",
    severity="critical",
    summary="Database pool {{ $value | humanizePercentage }} in use on {{ $labels.instance }}",
    description="{{ $value | humanizePercentage }} of the database pool's connections on {{ $labels.instance }}"
    " are in use (above 90% for 2 minutes): queries are about to wait for a connection."
    " Increase the pool or find what holds connections.",
    runbook="docs/runbooks/DatabasePoolExhausted.md",
)
def check_database_pool_exhausted():
    """More than 90% of the database pool's connections are in use, for 2 minutes (seed alert 5)."""


@alert(
    expr=failing_expr(function="check_database_answers"),
    cause_of="database",
    for_="1m",
    severity="critical",
    summary="The database does not answer",
    description="{{ $labels.check }} has failed for 1 minute: PostgreSQL did not answer select 1 within 1s."
    " Check the database's status; restart it if needed.",
    runbook="docs/runbooks/DatabaseDown.md",
)
def check_database_down():
    """The database has not answered a query for 1 minute (seed alert 6)."""


@alert(
    expr=failing_expr(function="check_cache_answers"),
    cause_of="cache",
    severity="critical",
    summary="Redis does not answer",
    description="{{ $labels.check }} failed: Redis did not answer PING within 250ms (the connection is lost,"
    " refused, or too slow). Check Redis; restart it if needed.",
    runbook="docs/runbooks/CacheDown.md",
)
def check_cache_down():
    """The connection to Redis is lost (seed alert 7)."""


@alert(
    expr=failing_expr(function="check_fraiseql_healthy"),
    depends_on=["database"],
    for_="2m",
    severity="critical",
    summary="FraiseQL is not healthy",
    description="{{ $labels.check }} has failed for 2 minutes: a replica's /health does not say healthy"
    " (degraded, unhealthy, or no answer). Check the application's logs; restart it if needed.",
    runbook="docs/runbooks/HealthCheckFailing.md",
)
def check_health_check_failing():
    """FraiseQL's health check has failed for 2 minutes (seed alert 8)."""
