"""The orders API as the watcher sees it: each failing check becomes a FraiseQLCheckFailing alert."""

from fraiseql_checks import check


@check(severity="critical", runbook="docs/runbooks/orders-api-unhealthy.md")
async def check_server_is_healthy(fraiseql):
    """FraiseQL reports itself healthy (`degraded` answers HTTP 200 too: read the body)."""
    health = await fraiseql.health()
    assert health.status == "healthy", health.body


@check(severity="warning", runbook="docs/runbooks/orders-api-not-ready.md")
async def check_server_is_ready(fraiseql):
    readiness = await fraiseql.readiness()
    assert readiness.ready, readiness.reason


@check(severity="critical", runbook="docs/runbooks/orders-database-down.md")
async def check_database_answers(db):
    assert await db.fetchval("select 1") == 1
