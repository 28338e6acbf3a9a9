"""Cache coherency: what GraphQL serves (possibly from a cache) must equal what the database holds.

``assert_coherent`` runs a GraphQL query and the SQL that is its source of truth,
and fails with a diff when they disagree. Point it at your own query, as
``docs/examples/check_coherency.py`` does.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from fraiseql_checks.trace import record

if TYPE_CHECKING:
    from fraiseql_checks.targets.database import Database
    from fraiseql_checks.targets.fraiseql import GraphQLClient

_MAX_DIFF_LINES = 40


def _strip_typename(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _strip_typename(v) for k, v in value.items() if k != "__typename"}
    if isinstance(value, list):
        return [_strip_typename(v) for v in value]
    return value


def _at(data: Any, path: str | None) -> Any:
    for part in (path or "").split(".") if path else ():
        if not isinstance(data, Mapping) or part not in data:
            raise AssertionError(f"the GraphQL answer has no {path!r} (stopped at {part!r}): {data!r}")
        data = data[part]
    return data


def _ordered(rows: Any, key: str | None) -> Any:
    if key is None or not isinstance(rows, list):
        return rows
    return sorted(rows, key=lambda row: json.dumps(row.get(key) if isinstance(row, Mapping) else row, default=str))


def _text(value: Any) -> list[str]:
    return json.dumps(value, indent=2, sort_keys=True, default=str).splitlines(keepends=True)


def diff(graphql_rows: Any, sql_rows: Any) -> str:
    """A unified diff of the two answers as indented JSON (GraphQL first), cut at 40 lines."""
    lines = list(difflib.unified_diff(_text(graphql_rows), _text(sql_rows), "graphql", "sql"))
    if len(lines) > _MAX_DIFF_LINES:
        lines = [*lines[:_MAX_DIFF_LINES], f"... {len(lines) - _MAX_DIFF_LINES} more diff lines\n"]
    return "".join(lines).rstrip("\n")


async def assert_coherent(
    graphql: GraphQLClient,
    db: Database,
    *,
    query: str,
    sql: str,
    args: Sequence[Any] = (),
    variables: Mapping[str, Any] | None = None,
    path: str | None = None,
    key: str | None = None,
) -> None:
    """Fail (with a diff) unless the GraphQL answer at ``path`` equals the rows ``sql`` returns.

    Rows are compared as JSON objects, without ``__typename``; with ``key``, both
    sides are ordered by that field first, so the comparison ignores row order. Name
    the SQL columns as the GraphQL fields (``select id, full_name as "fullName"``).
    Records ``coherency_rows`` (rows compared).
    """
    result = await graphql.execute(query, variables)
    if result.errors:
        raise AssertionError(f"GraphQL answered errors: {'; '.join(result.error_messages)}")
    served = _ordered(_strip_typename(_at(result.data, path)), key)
    truth = _ordered([dict(row) for row in await db.fetch(sql, *args)], key)
    if not isinstance(served, list):
        truth = truth[0] if len(truth) == 1 else truth  # a single object, e.g. `user(id: 1)`
    record("coherency_rows", len(truth) if isinstance(truth, list) else 1)
    if served != truth:
        where = f" at {path!r}" if path else ""
        raise AssertionError(f"GraphQL{where} and SQL disagree:\n{diff(served, truth)}")
