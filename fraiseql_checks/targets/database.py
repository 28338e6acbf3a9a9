"""The ``db`` fixture: a thin wrapper over an asyncpg pool that makes every query traceable.

Each session the tool opens sets ``application_name`` (``fraiseql-checks`` unless
configured), and each query starts with a ``/* traceparent='…' */`` comment naming
the check that sent it, so a slow query seen in ``pg_stat_activity`` or the server
log leads back to its check. The SQL text is unique per run, so asyncpg's
statement cache is off (it would fill with one-off statements).

The pool opens connections on demand: a database that is down when the session
starts fails the checks that use it, and they pass again once it is back, with no
restart of the tool. Faults of the target become one ``TargetError`` line.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import urllib.parse
from collections.abc import AsyncIterator, Sequence
from typing import Any, NoReturn

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from fraiseql_checks.errors import TargetError
from fraiseql_checks.targets.failures import describe_connection_error
from fraiseql_checks.targets.plugin import APPLICATION_NAME, CONNECT_TIMEOUT, POOL_SIZE
from fraiseql_checks.timing import own_timeout, own_timeout_backstop
from fraiseql_checks.trace import current_run

_pg = asyncpg.exceptions
#: The connection is gone: the pool's other connections are likely gone too.
_CONNECTION_LOST: tuple[type[BaseException], ...] = (
    _pg.ConnectionDoesNotExistError,
    _pg.AdminShutdownError,
    _pg.CannotConnectNowError,
    _pg.PostgresConnectionError,
    ConnectionResetError,
    BrokenPipeError,
)
_CREDENTIALS: tuple[type[BaseException], ...] = (
    _pg.InvalidPasswordError,
    _pg.InvalidAuthorizationSpecificationError,
)
#: Errors about the target's schema (a missing table, extension or privilege), not the check's SQL.
_SCHEMA: tuple[type[BaseException], ...] = (
    _pg.UndefinedTableError,
    _pg.UndefinedColumnError,
    _pg.UndefinedFunctionError,
    _pg.UndefinedObjectError,
    _pg.InvalidSchemaNameError,
    _pg.ObjectNotInPrerequisiteStateError,
    _pg.InsufficientPrivilegeError,
    _pg.InvalidCatalogNameError,
)


def describe_dsn(dsn: str) -> str:
    """``host:port/dbname`` of a DSN, without user or password."""
    parts = urllib.parse.urlsplit(dsn)
    host = parts.hostname or "localhost"
    port = parts.port or 5432
    name = parts.path.lstrip("/") or parts.username or "postgres"
    return f"{host}:{port}/{name}"


def traced(query: str) -> str:
    """``query`` prefixed with the running check's ``traceparent`` as an SQL comment."""
    run = current_run.get()
    if run is None:
        return query
    return f"/* traceparent='{run.traceparent}' */ {query}"


def _reason(exc: BaseException) -> str:
    """The server's message, without asyncpg's extra DETAIL and HINT lines."""
    message = getattr(exc, "message", None) or str(exc)
    return str(message).splitlines()[0] if message else type(exc).__name__


def _broken_by_the_server(exc: BaseException) -> bool:
    """An asyncpg client error that says a statement on a connection just taken from the
    pool found it still busy with what the server sent last (its state left by a server
    that ended it): the connection, not the statement, is at fault."""
    return isinstance(exc, _pg.ProtocolError) or "another operation" in str(exc)


def _first_line(query: str) -> str:
    line = " ".join(query.split())
    return line if len(line) <= 80 else line[:79] + "…"


class Queries:
    """The query methods of asyncpg, each sending the ``traceparent`` comment."""

    async def _call(self, method: str, query: str, args: Sequence[Any], timeout: float | None) -> Any:
        raise NotImplementedError

    async def fetch(self, query: str, *args: Any, timeout: float | None = None) -> list[asyncpg.Record]:
        result: list[asyncpg.Record] = await self._call("fetch", query, args, timeout)
        return result

    async def fetchrow(self, query: str, *args: Any, timeout: float | None = None) -> asyncpg.Record | None:
        result: asyncpg.Record | None = await self._call("fetchrow", query, args, timeout)
        return result

    async def fetchval(self, query: str, *args: Any, column: int = 0, timeout: float | None = None) -> Any:
        if column:
            row = await self.fetchrow(query, *args, timeout=timeout)
            return None if row is None else row[column]
        return await self._call("fetchval", query, args, timeout)

    async def execute(self, query: str, *args: Any, timeout: float | None = None) -> str:
        result: str = await self._call("execute", query, args, timeout)
        return result


class TracedConnection(Queries):
    """One pooled connection (``async with db.acquire() as conn``), e.g. for a transaction or a cursor."""

    def __init__(self, database: Database, connection: asyncpg.Connection | PoolConnectionProxy) -> None:
        self.database = database
        self.raw = connection

    def transaction(self, **kwargs: Any) -> Any:
        return self.raw.transaction(**kwargs)

    def cursor(self, query: str, *args: Any, prefetch: int | None = None, timeout: float | None = None) -> TracedCursor:
        """``async for row in conn.cursor(query, *args)``: rows through a server-side cursor.

        As with asyncpg, only inside a transaction; ``prefetch`` rows are fetched at a time.
        """
        return TracedCursor(self, query, args, prefetch, timeout)

    async def _call(self, method: str, query: str, args: Sequence[Any], timeout: float | None) -> Any:
        try:
            return await getattr(self.raw, method)(traced(query), *args, timeout=timeout)
        except Exception as exc:
            self.database.reraise(exc, query)


class TracedCursor:
    """The rows of a server-side cursor (``TracedConnection.cursor``), its faults translated like a query's."""

    def __init__(
        self,
        connection: TracedConnection,
        query: str,
        args: Sequence[Any],
        prefetch: int | None,
        timeout: float | None,
    ) -> None:
        self.connection = connection
        self.query = query
        self.args = args
        self.prefetch = prefetch
        self.timeout = timeout
        self._rows: Any = None

    def __aiter__(self) -> TracedCursor:
        try:
            cursor = self.connection.raw.cursor(
                traced(self.query), *self.args, prefetch=self.prefetch, timeout=self.timeout
            )
            self._rows = cursor.__aiter__()
        except Exception as exc:
            self.connection.database.reraise(exc, self.query)
        return self

    async def __anext__(self) -> asyncpg.Record:
        if self._rows is None:
            self.__aiter__()
        try:
            row: asyncpg.Record = await self._rows.__anext__()
        except StopAsyncIteration:
            raise
        except Exception as exc:
            self.connection.database.reraise(exc, self.query)
        return row


class Database(Queries):
    """The ``db`` fixture: ``fetch``, ``fetchrow``, ``fetchval``, ``execute`` and ``acquire()``."""

    def __init__(
        self,
        dsn: str,
        *,
        pool_size: int = POOL_SIZE,
        connect_timeout: float = CONNECT_TIMEOUT,
        application_name: str = APPLICATION_NAME,
    ) -> None:
        self.dsn = dsn
        self.where = describe_dsn(dsn)
        self.pool_size = pool_size
        self.connect_timeout = connect_timeout
        self.application_name = application_name
        self._pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()

    async def pool(self) -> asyncpg.Pool:
        """The asyncpg pool (created on first use; it connects on demand)."""
        if self._pool is None:
            async with self._lock:
                if self._pool is None:
                    try:
                        self._pool = await asyncpg.create_pool(
                            self.dsn,
                            min_size=0,
                            max_size=self.pool_size,
                            # each connect's own limit is only a backstop: ``acquire`` sets the real one
                            timeout=own_timeout_backstop(self.connect_timeout),
                            statement_cache_size=0,
                            server_settings={"application_name": self.application_name},
                        )
                    except Exception as exc:
                        self.reraise(exc)
        return self._pool

    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[TracedConnection]:
        """A connection of the pool for several statements (a transaction, ``SET LOCAL``...)."""
        pool = await self.pool()
        try:
            # the check's own time: a connection made while a neighbour held the loop is kept
            async with own_timeout(self.connect_timeout):
                connection = await pool.acquire()
        except Exception as exc:
            self.reraise(exc)
        try:
            yield TracedConnection(self, connection)
        finally:
            # Resetting a connection the server has just ended fails: asyncpg then terminates
            # it (the pool connects anew), and what the statements did or raised stands.
            with contextlib.suppress(Exception):
                # bounded as before: asyncpg gave ``release`` the ``acquire``'s timeout
                await pool.release(connection, timeout=self.connect_timeout)

    async def _call(self, method: str, query: str, args: Sequence[Any], timeout: float | None) -> Any:
        async with self.acquire() as connection:
            try:
                return await connection._call(method, query, args, timeout)
            except _pg.InternalClientError as exc:  # ``translate`` leaves these to the check
                if not _broken_by_the_server(exc):
                    raise
                # A connection whose server went away while it read an error comes back from
                # the pool unusable (seen when the server shuts down under concurrent queries):
                # the server's fault, and the connection must not be handed out again.
                connection.raw.terminate()
                raise self._lost(exc) from exc

    def reraise(self, exc: Exception, query: str | None = None) -> NoReturn:
        """Raise ``exc`` as a ``TargetError`` when it is the database's fault, else unchanged."""
        translated = self.translate(exc, query)
        if translated is exc:
            raise exc
        raise translated from exc

    def translate(self, exc: BaseException, query: str | None = None) -> BaseException:
        """A ``TargetError`` for faults of the database; other exceptions (the check's own SQL) unchanged."""
        if isinstance(exc, TargetError):
            return exc
        where = f"database {self.where}"
        if isinstance(exc, _CONNECTION_LOST):
            return self._lost(exc)
        if isinstance(exc, _CREDENTIALS):
            return TargetError(f"{where}: wrong credentials: {_reason(exc)}", target="database")
        if isinstance(exc, _SCHEMA):
            sql = f" (in: {_first_line(query)})" if query else ""
            return TargetError(f"{where}: {_reason(exc)}{sql}", target="database")
        if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
            if query is not None:  # the statement's own timeout, not the connection's
                return TargetError(f"{where}: the query timed out (in: {_first_line(query)})", target="database")
            return TargetError(
                f"{where}: timed out connecting after {self.connect_timeout:g}s", target="database", unreachable=True
            )
        if isinstance(exc, _pg.InterfaceError) and "closed" in str(exc):
            return self._lost(exc)
        if isinstance(exc, (OSError, ssl.SSLError, socket.gaierror)):
            host = urllib.parse.urlsplit(self.dsn).hostname or ""
            return TargetError(f"{where}: {describe_connection_error(exc, host)}", target="database", unreachable=True)
        return exc

    def _lost(self, exc: BaseException) -> TargetError:
        """The server dropped the connection (or left it unusable): the target is unreachable."""
        message = f"database {self.where}: connection lost: {_reason(exc)}"
        return TargetError(message, target="database", unreachable=True)

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            try:
                await asyncio.wait_for(pool.close(), timeout=self.connect_timeout)
            except (TimeoutError, OSError, asyncpg.PostgresError):
                pool.terminate()
