"""Running audit SQL: read-only transactions under the audit role and tenant, with evidence.

Every statement runs inside ``BEGIN READ ONLY`` on a connection of the ``db`` pool,
after ``set_config('role', ...)`` (what ``SET LOCAL ROLE`` does) and the tenant
setting (``set_config('fraiseql.tenant_id', ...)``), both local to the transaction,
so the database's row-level security policies apply exactly as they would to that
role and tenant, and nothing leaks to the next user of the connection. No value is
ever written into SQL text: role, setting name and tenant are parameters too.

Each statement is recorded for the evidence report in the running check's
``extra["audit"]``: the exact SQL, its parameters, what it returned and when.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import decimal
import ipaddress
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from typing import Any, Protocol

from fraiseql_checks.errors import TargetError
from fraiseql_checks.trace import current_run

#: How many result rows of an aggregate are copied into the evidence.
EVIDENCE_ROWS = 50


class Pool(Protocol):
    """What the audit reader needs of the ``db`` fixture: ``acquire()``, as asyncpg's ``Pool`` has it.

    The connection it yields needs ``transaction``, ``execute``, ``fetch`` and ``cursor``:
    the ``db`` fixture's ``TracedConnection`` and asyncpg's own connection both have them.
    """

    def acquire(self) -> Any: ...


@dataclasses.dataclass(frozen=True)
class Scope:
    """Who the audit queries run as: the role and the tenant (``None``: the login role, no tenant)."""

    role: str | None = None
    tenant: str | None = None
    tenant_setting: str = "fraiseql.tenant_id"

    def setup(self) -> tuple[str, list[Any]] | None:
        """The statement that scopes a transaction, and its parameters."""
        calls: list[str] = []
        params: list[Any] = []
        if self.role:
            params.append(self.role)
            calls.append(f"set_config('role', ${len(params)}, true)")
        if self.tenant is not None:
            params += [self.tenant_setting, self.tenant]
            calls.append(f"set_config(${len(params) - 1}, ${len(params)}, true)")
        if not calls:
            return None
        return "SELECT " + ", ".join(calls), params


def jsonable(value: Any) -> Any:
    """A parameter or result value as JSON can hold it, as an auditor would type it into psql."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return f"{value.total_seconds():g} seconds"
    if isinstance(value, (uuid.UUID, decimal.Decimal, dt.date)):
        return str(value)
    if isinstance(value, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return str(value)
    if isinstance(value, (ipaddress.IPv4Interface, ipaddress.IPv6Interface)):
        return str(value.ip) if value.network.prefixlen == value.max_prefixlen else str(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    return str(value)


class Reader:
    """Executes audit statements on the pool, scoped and recorded."""

    def __init__(self, pool: Pool, scope: Scope) -> None:
        self.pool = pool
        self.scope = scope

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Any]:
        """A connection inside a read-only transaction, under the audit role and tenant."""
        async with self.pool.acquire() as conn, conn.transaction(readonly=True):
            setup = self.scope.setup()
            if setup is not None:
                await conn.execute(setup[0], *setup[1])
            yield conn

    async def fetch(
        self,
        sql: str,
        params: Sequence[Any],
        *,
        what: str,
        summary: Callable[[list[Any]], Any] | None = None,
    ) -> list[Any]:
        """All rows of ``sql``; ``summary(rows)`` is what the evidence keeps of them."""
        started_at = time.time()
        start = time.perf_counter()
        try:
            async with self.transaction() as conn:
                rows: list[Any] = await conn.fetch(sql, *params)
        except Exception as exc:  # the evidence shows what failed too, then the check errors
            self.record(what, sql, params, started_at, time.perf_counter() - start, 0, None, error=exc)
            raise
        result = summary(rows) if summary is not None else None
        self.record(what, sql, params, started_at, time.perf_counter() - start, len(rows), result)
        return rows

    async def stream(self, sql: str, params: Sequence[Any], *, what: str, batch: int) -> AsyncGenerator[Any, None]:
        """Rows of ``sql`` through a server-side cursor, ``batch`` at a time."""
        started_at = time.time()
        start = time.perf_counter()
        count = 0
        error: Exception | None = None
        try:
            async with self.transaction() as conn:
                async for row in conn.cursor(sql, *params, prefetch=batch):
                    count += 1
                    yield row
        except Exception as exc:  # the evidence shows what failed too, then the check errors
            error = exc
            raise
        finally:
            self.record(what, sql, params, started_at, time.perf_counter() - start, count, None, error=error)

    def record(
        self,
        what: str,
        sql: str,
        params: Sequence[Any],
        started_at: float,
        duration: float,
        rows: int,
        result: Any,
        error: BaseException | None = None,
    ) -> None:
        """Add one executed statement to the running check's evidence (no-op outside a check)."""
        run = current_run.get()
        if run is None:
            return
        evidence = run.extra.setdefault("audit", {"queries": []})
        entry: dict[str, Any] = {
            "what": what,
            "sql": sql,
            "params": jsonable(list(params)),
            "role": self.scope.role,
            "tenant": self.scope.tenant,
            "tenant_setting": self.scope.tenant_setting if self.scope.tenant is not None else None,
            "read_only": True,
            "ran_at": dt.datetime.fromtimestamp(started_at, dt.UTC).isoformat(),
            "duration_ms": round(duration * 1000, 3),
            "rows": rows,
        }
        if result is not None:
            entry["result"] = jsonable(result)
        if error is not None:
            # The database's own error, not the ``db`` fixture's TargetError around it (which repeats the SQL).
            if isinstance(error, TargetError) and error.__cause__ is not None:
                error = error.__cause__
            entry["error"] = f"{type(error).__name__}: {error}".splitlines()[0]
        evidence["queries"].append(entry)


def record_value(name: str, value: Any) -> None:
    """Keep a named fact (a count, a window) in the running check's audit evidence."""
    run = current_run.get()
    if run is None:
        return
    evidence = run.extra.setdefault("audit", {"queries": []})
    evidence.setdefault("facts", {})[name] = jsonable(value)
