"""The checks whose history is the API's SLOs: each run counts for its interval."""

from fraiseql_checks import check


@check(interval="30s", severity="critical", slo="99.9% / 30d")
async def check_graphql_answers(graphql):
    """GraphQL answers a trivial query without errors."""
    result = await graphql.execute("{ __typename }")
    assert not result.errors, result.error_messages


@check(interval="1m", severity="warning", slo="99.5% / 7d")
async def check_server_is_healthy(fraiseql):
    health = await fraiseql.health()
    assert health.status == "healthy", health.body
