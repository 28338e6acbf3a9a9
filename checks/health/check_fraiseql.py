"""The FraiseQL server: /health (reading the body), readiness, replicas in agreement, GraphQL, /metrics.

Set ``FRAISEQL_URL`` (several replicas: a comma-separated list) and, for FraiseQL v2's
``/metrics``, ``FRAISEQL_METRICS_TOKEN``; ``FRAISEQL_PROFILE=fraiseql-v1`` for a v1 server.
Thresholds (``[tool.fraiseql-checks.thresholds]``): ``graphql.latency_max_seconds`` (1).

``/health`` comes in two shapes: since 2.15 ``observers.events_processed`` counts the
events processed since start-up (a lifetime counter, never a backlog); older servers
sent ``observers.pending_events``, the events waiting. Only the latter is recorded as
``observer_backlog``; on 2.15+ the backlog is ``fraiseql_observer_job_queue_depth`` on
``/metrics``, in builds with observer metrics.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from fraiseql_checks import check, record, stopwatch


def _failing_subsystems(body: Mapping[str, Any]) -> list[str]:
    """The parts of a v2 health body that explain a ``degraded`` or ``unhealthy`` status."""
    found = []
    for name, part in body.items():
        if not isinstance(part, Mapping):
            continue
        if part.get("connected") is False:
            found.append(f"{name}: not connected")
        elif part.get("running") is False:
            found.append(f"{name}: not running")
        if part.get("last_error"):
            found.append(f"{name}: {part['last_error']}")
    return found


def observer_backlog(body: Mapping[str, Any]) -> int | None:
    """The observers' backlog a ``/health`` body reports: ``pending_events`` (before 2.15).

    ``None`` when the body has no backlog, as on 2.15+, whose ``events_processed`` is a
    lifetime counter: reading it as a backlog would see one that only ever grows.
    """
    observers = body.get("observers")
    if not isinstance(observers, Mapping):
        return None
    pending = observers.get("pending_events")
    if isinstance(pending, bool) or not isinstance(pending, (int, float)):
        return None
    return int(pending)


@check(
    interval="30s",
    severity="critical",
    tags=["fraiseql"],
    runbook="docs/runbooks/HealthCheckFailing.md",
    failure_threshold=2,
    slo="99.9% / 30d",
    panel={"value": "healthy_ratio", "unit": "percentunit", "thresholds": [1], "bad": "below"},
)
async def check_fraiseql_healthy(fraiseql):
    """Every replica's /health says "healthy" (a "degraded" answer is HTTP 200 but is not healthy)."""
    problems = []
    backlogs = []
    replicas = fraiseql.replicas
    for replica in replicas:
        health = await replica.health()
        backlog = observer_backlog(health.body)
        if backlog is not None:
            backlogs.append(backlog)
        if not health.healthy:
            detail = ", ".join(_failing_subsystems(health.body))
            problems.append(f"{health.url}: {health.status or 'no status'} (HTTP {health.status_code})")
            if detail:
                problems[-1] += f": {detail}"
    record("healthy_ratio", (len(replicas) - len(problems)) / len(replicas))
    if backlogs:  # servers before 2.15 only
        record("observer_backlog", sum(backlogs))
    assert not problems, "not healthy: " + "; ".join(problems)


@check(interval="30s", severity="critical", tags=["fraiseql"], runbook="docs/runbooks/HealthCheckFailing.md")
async def check_fraiseql_ready(fraiseql):
    """Every replica's readiness endpoint answers "ready" (v2 /readiness, v1 /ready)."""
    problems = []
    for replica in fraiseql.replicas:
        readiness = await replica.readiness()
        if not readiness.ready:
            reason = f": {readiness.reason}" if readiness.reason else ""
            problems.append(f"{readiness.url}: {readiness.status} (HTTP {readiness.status_code}){reason}")
    assert not problems, "not ready: " + "; ".join(problems)


@check(interval="5m", severity="warning", tags=["fraiseql"], runbook="docs/runbooks/ReplicasDisagree.md")
async def check_replicas_agree(fraiseql):
    """All replicas run the same version and the same compiled schema (schema_hash)."""
    replicas = fraiseql.replicas
    if len(replicas) < 2:
        pytest.skip("one FraiseQL URL configured: list the replicas in FRAISEQL_URL to compare them")
    seen = {}
    for replica in replicas:
        health = await replica.health()
        seen[replica.url] = (health.version, health.schema_hash)
    if all(version is None and schema is None for version, schema in seen.values()):
        pytest.skip(f"the servers report no version or schema_hash ({fraiseql.profile.name})")
    distinct = set(seen.values())
    record("distinct_versions", len(distinct))
    assert len(distinct) == 1, "replicas disagree: " + "; ".join(
        f"{url} version={version} schema_hash={schema}" for url, (version, schema) in seen.items()
    )


@check(
    interval="1m",
    severity="critical",
    tags=["fraiseql", "graphql"],
    runbook="docs/runbooks/GraphQLSmokeFailing.md",
    slo="99.5% / 30d",
    panel={"value": "graphql_latency_seconds", "unit": "s", "thresholds": [1]},
)
async def check_graphql_answers(fraiseql, config):
    """A smoke query (``fraiseql.smoke_query``, default ``{ __typename }``) answers without errors within 1s."""
    limit = config.threshold("graphql.latency_max_seconds", 1.0)
    query = fraiseql.target.smoke_query
    with stopwatch() as took:  # time other checks held the event loop is not the server's
        result = await fraiseql.graphql.execute(query)
    elapsed = took.seconds
    record("graphql_latency_seconds", elapsed)
    assert not result.errors, f"{query} answered errors: {'; '.join(result.error_messages)}"
    assert result.data is not None, f"{query} answered no data (HTTP {result.status_code})"
    assert elapsed <= limit, f"{query} took {elapsed:.3f}s, above {limit:g}s"


@check(interval="5m", severity="warning", tags=["fraiseql", "metrics"], runbook="docs/runbooks/MetricsEndpointDown.md")
async def check_metrics_endpoint(fraiseql):
    """/metrics answers Prometheus text with FraiseQL's metrics (v2: with FRAISEQL_METRICS_TOKEN)."""
    exposition = await fraiseql.metrics()
    ours = [name for name in exposition.families if name.startswith("fraiseql_")]
    record("metric_families", len(exposition))
    assert ours, f"{fraiseql.url}{fraiseql.target.metrics_path} exposes no fraiseql_* metric"
