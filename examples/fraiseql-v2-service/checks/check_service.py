"""The orders service's checks: FraiseQL answers, its database answers, its pool has room."""

import pytest

from fraiseql_checks import check, record

#: The views the API reads: one row of each is enough.
VIEWS = ["pg_catalog.pg_tables", "pg_catalog.pg_views"]


@check(severity="critical", runbook="https://runbooks.example.com/orders/api-down")
async def check_server_is_healthy(health):
    """FraiseQL says it is healthy: `degraded` still answers HTTP 200, so read the body."""
    assert health.status == "healthy", health.body


@check(severity="critical")
async def check_database_is_connected(health):
    """FraiseQL's own view of its database."""
    assert health["database"]["connected"], health["database"]


@check(severity="warning")
async def check_graphql_answers(graphql):
    result = await graphql.execute("{ __typename }")
    assert not result.errors, result.error_messages


@check(severity="warning", panel={"value": "pool_used_ratio", "unit": "percentunit", "thresholds": [0.9]})
async def check_pool_has_room(fraiseql):
    """Fewer than 90% of FraiseQL's database connections in use (seed alert DatabasePoolExhausted)."""
    metrics = await fraiseql.metrics()
    active = metrics.value("fraiseql_db_pool_connections_active")
    total = metrics.value("fraiseql_db_pool_connections_total")
    assert active is not None and total, "FraiseQL exports no pool gauges"
    record("pool_used_ratio", active / total)
    assert active / total < 0.9, f"{active:g} of {total:g} connections in use"


@pytest.mark.parametrize("view", VIEWS)
@check(severity="critical")
async def check_view_answers(db, view):
    """The views the API reads answer (as the API's database role, from DATABASE_URL)."""
    await db.fetch(f"select * from {view} limit 1")
