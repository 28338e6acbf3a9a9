"""The ``cache`` fixture: a ``redis.asyncio`` client for the session, with faults as one line.

It is a ``redis.asyncio.Redis`` — every command works as documented by redis-py —
whose connection, timeout and authentication failures become ``TargetError``
naming the server. Connections are opened on demand, so a Redis that restarts is
reached again on the next run without restarting the tool.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Awaitable
from typing import Any

import redis.asyncio
import redis.asyncio.client
import redis.exceptions

from fraiseql_checks.errors import TargetError
from fraiseql_checks.targets.failures import describe_connection_error
from fraiseql_checks.timing import own_timeout, own_timeout_backstop


def describe_redis_url(url: str) -> str:
    """``host:port/db`` of a Redis URL, without the password."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "unix":
        return parts.path
    return f"{parts.hostname or 'localhost'}:{parts.port or 6379}{parts.path or '/0'}"


def describe_redis_error(exc: redis.exceptions.RedisError, timeout: float) -> str:
    if isinstance(exc, redis.exceptions.AuthenticationError | redis.exceptions.AuthorizationError):
        return f"wrong credentials: {exc}"
    if isinstance(exc, redis.exceptions.NoPermissionError):
        return f"not allowed: {exc}"
    if isinstance(exc, redis.exceptions.TimeoutError):
        return f"timed out after {timeout:g}s"
    if isinstance(exc, redis.exceptions.BusyLoadingError):
        return f"still loading its data set: {exc}"
    reason = describe_connection_error(exc)
    if reason.startswith(type(exc).__name__):  # nothing more specific found in the chain
        text = str(exc)
        if "Authentication required" in text or "NOAUTH" in text:
            return f"wrong credentials: {text}"
        if "closed by server" in text:
            return f"connection lost: {text}"
        return f"connection failed: {text}"
    return reason


async def _answer(where: str, timeout: float, waiting: Awaitable[Any]) -> Any:
    """What ``waiting`` (a command, a pipeline) returns, within ``timeout`` of the check's own
    time; the cache's faults as ``TargetError``."""
    try:
        # the check's own time: an answer that came while a neighbour held the loop is kept
        async with own_timeout(timeout):
            return await waiting
    except TimeoutError as exc:  # ours (redis-py's own limit is a later backstop)
        raise TargetError(f"cache {where}: timed out after {timeout:g}s", target="cache", unreachable=True) from exc
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
        # wrong credentials are ConnectionErrors in redis-py, but the cache is up
        if isinstance(exc, redis.exceptions.AuthenticationError | redis.exceptions.AuthorizationError):
            raise TargetError(f"cache {where}: {describe_redis_error(exc, timeout)}", target="cache") from exc
        reason = describe_redis_error(exc, timeout)
        raise TargetError(f"cache {where}: {reason}", target="cache", unreachable=True) from exc
    except redis.exceptions.NoPermissionError as exc:  # a ResponseError: before the next clause
        raise TargetError(f"cache {where}: {describe_redis_error(exc, timeout)}", target="cache") from exc
    except redis.exceptions.ResponseError as exc:
        if "NOAUTH" in str(exc) or "WRONGPASS" in str(exc):
            raise TargetError(f"cache {where}: wrong credentials: {exc}", target="cache") from exc
        raise


class Cache(redis.asyncio.Redis):
    """``redis.asyncio.Redis`` whose faults (down, timeout, wrong password) raise ``TargetError``."""

    where: str = ""
    timeout_s: float = 5.0

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        return await _answer(self.where, self.timeout_s, super().execute_command(*args, **options))  # type: ignore[no-untyped-call]

    def pipeline(self, transaction: bool = True, shard_hint: str | None = None) -> CachePipeline:
        pipe = CachePipeline(self.connection_pool, self.response_callbacks, transaction, shard_hint)
        pipe.where, pipe.timeout_s = self.where, self.timeout_s
        return pipe


class CachePipeline(redis.asyncio.client.Pipeline):
    """A pipeline of ``Cache``: its ``execute``, and the commands it sends at once (``WATCH``
    and the reads of a transaction), have the same limit and faults as one command."""

    where: str = ""
    timeout_s: float = 5.0

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        answer: list[Any] = await _answer(self.where, self.timeout_s, super().execute(raise_on_error))
        return answer

    async def immediate_execute_command(self, *args: Any, **options: Any) -> Any:
        return await _answer(self.where, self.timeout_s, super().immediate_execute_command(*args, **options))  # type: ignore[no-untyped-call]


def connect(url: str, timeout: float = 5.0) -> Cache:
    """A ``Cache`` client for ``url`` (connections open on first use)."""
    backstop = own_timeout_backstop(timeout)  # the limit is ``timeout``, in the check's own time (``_answer``)
    client = Cache.from_url(url, socket_connect_timeout=backstop, socket_timeout=backstop, decode_responses=True)
    assert isinstance(client, Cache)
    client.where = describe_redis_url(url)
    client.timeout_s = timeout
    return client
