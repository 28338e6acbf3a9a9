"""Fixtures the service's checks share."""

from fraiseql_checks import fixture


@fixture(scope="session")
async def health(fraiseql):
    """FraiseQL's /health, read once per run and shared by the checks that need it."""
    return await fraiseql.health()
