"""The seed's security alerts (9-11): failed logins, suspicious queries, permission-denied spikes.

FraiseQL exports no count of failed logins or permission-denied events; the audit
checks (checks/audit/) count them in the audit log and watch mode exports the
counts as ``fraiseql_check_value``. Query cost is the role ``{{query_cost}}``
(FraiseQL v2's ``fraiseql_graphql_queries_cost_total``); v1 exports nothing about
query cost, so that alert has no v1 rule. Which series each reads, and why: docs/alert-rules.md.
"""

from __future__ import annotations

from fraiseql_checks import alert
from fraiseql_checks.metrics import VALUE


@alert(
    expr=f'{VALUE.name}{{name="failed_logins"}} > {{{{threshold}}}}',
    threshold=10,
    severity="critical",
    summary="{{ $value }} failed logins within 5 minutes",
    description="The audit log holds {{ $value }} failed logins within 5 minutes (more than 10): a brute-force"
    " attempt? {{ $labels.check }} names the users and addresses involved. Enable rate limiting.",
    runbook="docs/runbooks/HighFailedAuthAttempts.md",
)
def check_high_failed_auth_attempts():
    """More than 10 failed logins within 5 minutes (seed alert 9)."""


@alert(
    expr="sum by (job) (rate({{query_cost}}[5m])) / sum by (job) (rate({{graphql_requests}}[5m])) > {{threshold}}",
    threshold=5000,
    severity="warning",
    summary="GraphQL queries cost {{ $value }} on average on {{ $labels.job }}",
    description="The GraphQL queries on {{ $labels.job }} cost {{ $value }} on average over the last 5 minutes"
    " (above 5000): unusually complex queries, which may be a denial-of-service attempt. Find the queries.",
    runbook="docs/runbooks/SuspiciousQueryPattern.md",
)
def check_suspicious_query_pattern():
    """GraphQL queries are unusually complex: their average cost is above 5000 (seed alert 10)."""


@alert(
    expr=f'{VALUE.name}{{name="permission_denied_events"}} > {{{{threshold}}}}',
    threshold=5,
    severity="critical",
    summary="{{ $value }} permission-denied events within 5 minutes",
    description="The audit log holds {{ $value }} permission-denied events within 5 minutes (more than 5)."
    " {{ $labels.check }} names the users involved. Investigate the attempts and check the permissions.",
    runbook="docs/runbooks/UnauthorizedDataAccess.md",
)
def check_unauthorized_data_access():
    """More than 5 permission-denied events within 5 minutes (seed alert 11)."""
