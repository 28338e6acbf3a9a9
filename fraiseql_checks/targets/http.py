"""The ``http`` fixture: one httpx client per session, tagging every request with the running check's trace.

The client is shared by every check, so the ``traceparent`` header is set per
request from the check running at that moment (an httpx event hook reads the run
context). Transport faults — connection refused, a name that does not resolve, a
TLS failure, a timeout — become one ``TargetError`` line instead of a traceback.
"""

from __future__ import annotations

import functools
import itertools
import socket
import ssl
from typing import Any

import certifi
import httpx

from fraiseql_checks._version import __version__
from fraiseql_checks.config import Config
from fraiseql_checks.errors import TargetError
from fraiseql_checks.trace import current_run

DEFAULT_TIMEOUT = 5.0
USER_AGENT = f"fraiseql-checks/{__version__}"
_SNIPPET = 120


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and what it wraps (``__cause__``, then ``__context__``), innermost last."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def describe_connection_error(exc: BaseException, host: str = "") -> str:
    """What went wrong opening a connection, in a few words (refused, DNS, TLS, ...)."""
    for cause in reversed(_causes(exc)):
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"TLS failure: certificate verify failed: {cause.verify_message}"
        if isinstance(cause, ssl.SSLError):
            return f"TLS failure: {cause.reason or cause}"
        if isinstance(cause, socket.gaierror):
            return f"cannot resolve host {host!r}: {cause.strerror or cause}" if host else f"DNS failure: {cause}"
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, ConnectionResetError):
            return "connection reset by the server"
    text = str(exc)
    if "CERTIFICATE_VERIFY_FAILED" in text or "SSL" in text:
        return f"TLS failure: {text}"
    if "Name or service not known" in text or "nodename nor servname" in text:
        return f"cannot resolve host {host!r}" if host else "DNS failure"
    if "Connection refused" in text:
        return "connection refused"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def describe_transport_error(exc: httpx.TransportError, timeout: float | None = None) -> str:
    """One line for an httpx transport failure, naming the request."""
    try:
        request = exc.request
        where = f"{request.method} {request.url}"
        host = request.url.host
    except RuntimeError:  # an exception raised without a request attached
        where, host = "HTTP request", ""
    limit = f" after {timeout:g}s" if timeout else ""
    if isinstance(exc, httpx.ConnectTimeout):
        return f"{where}: timed out connecting{limit}"
    if isinstance(exc, httpx.TimeoutException):
        return f"{where}: timed out waiting for the answer{limit}"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"{where}: the server broke the HTTP exchange: {exc}"
    return f"{where}: {describe_connection_error(exc, host)}"


@functools.cache
def default_ssl_context() -> ssl.SSLContext:
    """One context for every pool: loading the CA bundle costs about 35 ms each time."""
    return ssl.create_default_context(cafile=certifi.where())


class ShardedTransport(httpx.AsyncBaseTransport):
    """Requests spread in turn over several small connection pools.

    httpcore's pool does work proportional to its connections times its queued
    requests on every request (encode/httpcore PR #1035): one pool with a hundred
    checks in flight spends more time there than on the network. Sixteen pools of
    eight connections keep that bookkeeping small.
    """

    def __init__(self, shards: int = 16, per_shard: int = 8, verify: Any = None) -> None:
        limits = httpx.Limits(max_connections=per_shard, max_keepalive_connections=per_shard)
        context = default_ssl_context() if verify is None or verify is True else verify
        self._pools = [httpx.AsyncHTTPTransport(verify=context, limits=limits) for _ in range(shards)]
        self._next = itertools.cycle(self._pools).__next__

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._next().handle_async_request(request)

    async def aclose(self) -> None:
        for pool in self._pools:
            await pool.aclose()


class HTTPClient(httpx.AsyncClient):
    """An ``httpx.AsyncClient`` that sends the running check's ``traceparent`` and turns
    transport faults into ``TargetError`` (``raise ... from`` the httpx exception)."""

    def __init__(self, *, timeout: float = DEFAULT_TIMEOUT, **kwargs: Any) -> None:
        if "transport" not in kwargs:
            kwargs["transport"] = ShardedTransport(verify=kwargs.pop("verify", None))
        hooks = kwargs.pop("event_hooks", {})
        hooks.setdefault("request", []).insert(0, _add_traceparent)
        headers = {"User-Agent": USER_AGENT, **kwargs.pop("headers", {})}
        super().__init__(timeout=timeout, event_hooks=hooks, headers=headers, **kwargs)
        self.timeout_s = timeout

    async def send(self, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        try:
            return await super().send(request, **kwargs)
        except httpx.TransportError as exc:
            unreachable = not isinstance(exc, (httpx.ReadTimeout, httpx.WriteTimeout, httpx.PoolTimeout))
            raise TargetError(
                describe_transport_error(exc, self.timeout_s), target="http", unreachable=unreachable
            ) from exc


async def _add_traceparent(request: httpx.Request) -> None:
    run = current_run.get()
    if run is not None:
        request.headers["traceparent"] = run.traceparent


def snippet(text: str) -> str:
    """The start of a body, on one line, for an error message."""
    flat = " ".join(text.split())
    return flat if len(flat) <= _SNIPPET else flat[: _SNIPPET - 1] + "…"


def status_error(response: httpx.Response, hint: str = "") -> TargetError:
    """A ``TargetError`` for an answer with an unexpected status code."""
    request = response.request
    reason = response.reason_phrase or ""
    message = f"{request.method} {request.url}: HTTP {response.status_code} {reason}".rstrip()
    if response.status_code in (401, 403):
        message += ": wrong or missing credentials"
    if hint:
        message += f" ({hint})"
    body = snippet(response.text) if response.content else ""
    if body:
        message += f": {body}"
    return TargetError(message, target="http")


def json_body(response: httpx.Response) -> Any:
    """The parsed JSON body; ``TargetError`` when the body is not JSON."""
    try:
        return response.json()
    except ValueError:
        request = response.request
        kind = response.headers.get("content-type", "no content type").split(";")[0]
        body = snippet(response.text) or "an empty body"
        raise TargetError(
            f"{request.method} {request.url}: expected JSON, got {kind} (HTTP {response.status_code}): {body}",
            target="http",
        ) from None


def make_client(config: Config, **kwargs: Any) -> HTTPClient:
    """A client with the configured timeout (``http_timeout``)."""
    return HTTPClient(timeout=float(config.get("http_timeout")), **kwargs)
