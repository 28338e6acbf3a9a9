"""Cache coherency: what GraphQL serves (perhaps from FraiseQL's cache) equals what the database holds.

Copy this file into your checks folder and point it at one of your own queries: the
GraphQL query, and the SQL that is its source of truth, with the SQL columns named
as the GraphQL fields. It needs FRAISEQL_URL and DATABASE_URL.
"""

from __future__ import annotations

from fraiseql_checks import check
from fraiseql_checks.coherency import assert_coherent


@check(interval="5m", severity="warning", tags=["cache"], runbook="docs/runbooks/CacheIncoherent.md")
async def check_users_coherent(graphql, db):
    """The first 20 users GraphQL serves are the first 20 rows of the users table."""
    await assert_coherent(
        graphql,
        db,
        query="{ users(limit: 20) { id name } }",
        sql="select id, name from users order by id limit 20",
        path="users",
        key="id",
    )
