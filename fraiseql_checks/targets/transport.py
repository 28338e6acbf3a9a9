"""The transport under the fixtures' httpx client: httpx's requests and responses, on our own HTTP/1.1 connections.

Checks write httpx (``httpx.Request``, ``httpx.Response``, ``raise_for_status()``,
``response.json()``); only the bytes on the wire go through ``http1`` (an asyncio
protocol and parser). httpcore's pool and its anyio/sniffio calls cost 0.5–0.8 ms of
CPU per request, aiohttp's about 0.15 ms and an import of 0.1 s; this a fraction of
either (docs/performance.md, "HTTP checks").

What this transport keeps from httpx's own: keep-alive connections per host, the
per-request ``connect`` and ``read`` timeouts, request bodies (bytes or streamed),
streamed responses, header names as the caller spelled them, no redirects (the
client follows them), bodies left encoded (the client decodes them), and failures as
httpx's exception classes with the original error as ``__cause__``. A request sent
on a kept-alive connection that the server had closed meanwhile is sent again once
on a new connection (when its body can be sent again). What it does not do: HTTP/2,
a ``write`` timeout, a ``pool`` timeout (the pool is sized from the run's concurrency
instead; a check's own timeout bounds a wait), proxies (httpx mounts its own
transport for the proxies named in the environment).
"""

from __future__ import annotations

import asyncio
import collections
import functools
import socket
import ssl
from collections.abc import AsyncIterator

import certifi
import httpx

from fraiseql_checks.targets.http1 import Connection, ProtocolError

#: Connections kept per transport when the run's concurrency is lower than this: a check
#: may send several requests at once, and checks share the client.
MIN_CONNECTIONS = 100
#: How long an idle keep-alive connection is kept (httpx's default ``keepalive_expiry``).
KEEPALIVE_S = 5.0
#: Connections being opened at once; a request beyond it waits for one of them or for a
#: connection another request gives back, whichever comes first. When 1,000 checks start
#: together against a quick server, the first answers come back before 1,000 connections
#: would have been opened, and the requests after them take those connections instead.
CONNECTING_AT_ONCE = 64

_Key = tuple[str, str, int, str | None]


@functools.cache
def default_ssl_context() -> ssl.SSLContext:
    """One context for every client: loading the CA bundle costs about 35 ms each time."""
    return ssl.create_default_context(cafile=certifi.where())


class HTTPTransport(httpx.AsyncBaseTransport):
    """An ``httpx.AsyncBaseTransport`` over keep-alive HTTP/1.1 connections.

    ``connections`` caps the open connections (all hosts together); a request beyond
    it waits for one to be free. ``verify`` is an ``ssl.SSLContext``, ``False`` (no
    certificate checks), or ``None``: certifi's CA bundle, as httpx, loaded on the
    first HTTPS request (35 ms or more that a run of plain-HTTP checks does not need).
    """

    def __init__(self, *, connections: int = MIN_CONNECTIONS, verify: ssl.SSLContext | bool | None = None) -> None:
        if connections < 1:
            raise ValueError(f"connections must be at least 1, not {connections}")
        self.connections = connections
        self._verify = verify
        self._idle: dict[_Key, list[Connection]] = {}
        self._open = 0  # connections open or opening, idle ones included
        self._connecting = 0
        self._waiting: collections.deque[asyncio.Future[None]] = collections.deque()
        self._busy: set[Connection] = set()
        self._closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        scheme = url.scheme
        if scheme not in ("http", "https"):
            raise _error(httpx.UnsupportedProtocol, f"Request URL has an unsupported protocol '{scheme}://'", request)
        port = url.port or (443 if scheme == "https" else 80)
        key = (scheme, url.host, port, request.extensions.get("sni_hostname"))
        limits = request.extensions.get("timeout") or {}
        read_timeout = limits.get("read")
        stream = request.stream
        replayable = isinstance(stream, httpx.ByteStream)
        head_request = request.method == "HEAD"
        for attempt in (1, 2):
            connection = await self._acquire(key, request, limits.get("connect"))
            connection.start(head_request)
            try:
                await _send(connection, request, stream, replayable)
                while connection.parser.head is None:
                    await connection.wait(read_timeout, lambda: _error(httpx.ReadTimeout, "timed out", request))
            except (ProtocolError, OSError) as exc:
                self._discard(connection)
                nothing_read = connection.parser.head is None and not connection.parser.pending
                if attempt == 1 and connection.reused and replayable and nothing_read:
                    continue  # a kept-alive connection the server had closed: once more on a new one
                raise _broken(exc, request) from exc
            except BaseException:
                self._discard(connection)
                raise
            break
        head = connection.parser.head
        assert head is not None
        body: httpx.AsyncByteStream
        if connection.parser.done:  # the whole body came with the headers (most answers)
            body = httpx.ByteStream(connection.parser.take())
            self._release(connection, head.keep_alive)
        else:
            body = _Body(self, connection, request, read_timeout)
        return httpx.Response(
            status_code=head.status,
            headers=head.headers,
            stream=body,
            request=request,
            extensions={"http_version": head.version, "reason_phrase": head.reason},
        )

    async def aclose(self) -> None:
        self._closed = True
        for connections in self._idle.values():
            for connection in connections:
                connection.close()
        self._idle.clear()
        for connection in self._busy:
            connection.close()
        self._busy.clear()
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)

    # the pool

    async def _acquire(self, key: _Key, request: httpx.Request, connect_timeout: float | None) -> Connection:
        loop = asyncio.get_running_loop()
        while True:
            if self._closed:
                raise RuntimeError("the HTTP transport is closed")
            idle = self._idle.get(key)
            now = loop.time()
            while idle:
                connection = idle.pop()
                if connection.closed or now - connection.idle_since > KEEPALIVE_S:
                    connection.close()
                    self._open -= 1
                    continue
                connection.reused = True
                self._busy.add(connection)
                return connection
            if self._connecting >= CONNECTING_AT_ONCE or (
                self._open >= self.connections and not self._close_an_idle_connection()
            ):
                waiter = loop.create_future()
                self._waiting.append(waiter)
                try:
                    await waiter
                except BaseException:
                    if waiter.done() and not waiter.cancelled():
                        self._wake_one()  # the slot it was given goes to the next in line
                    else:
                        self._waiting.remove(waiter)
                    raise
                continue
            self._open += 1
            self._connecting += 1
            try:
                connection = await self._connect(key, request, connect_timeout)
            except BaseException:
                self._open -= 1
                raise
            finally:
                self._connecting -= 1
                self._wake_one()  # a connection may be opened by the next in line
            self._busy.add(connection)
            return connection

    async def _connect(self, key: _Key, request: httpx.Request, timeout: float | None) -> Connection:
        scheme, host, port, sni = key
        context: ssl.SSLContext | None = None
        if scheme == "https":
            verify = self._verify
            if verify is None:
                context = default_ssl_context()
            elif verify is False:
                context = _unverified_context()
            else:
                assert isinstance(verify, ssl.SSLContext)
                context = verify
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                errors: list[OSError] = []
                for family, address in await _addresses(host, port):
                    try:
                        _, connection = await loop.create_connection(
                            lambda: Connection(key),
                            address,
                            port,
                            family=family,
                            ssl=context,
                            server_hostname=(sni or host) if context is not None else None,
                        )
                        return connection
                    except OSError as exc:  # the next address (localhost: ::1, then 127.0.0.1)
                        errors.append(exc)
                raise errors[0] if errors else OSError(f"no address for {host!r}")
        except TimeoutError as exc:
            raise _error(httpx.ConnectTimeout, "timed out connecting", request) from exc
        except OSError as exc:  # refused, DNS (socket.gaierror), TLS (ssl.SSLError)
            raise _error(httpx.ConnectError, str(exc) or type(exc).__name__, request) from exc

    def _release(self, connection: Connection, keep_alive: bool) -> None:
        """The exchange on ``connection`` is over: keep it for the next request, or close it."""
        self._busy.discard(connection)
        if keep_alive and not connection.closed and not self._closed:
            connection.idle_since = asyncio.get_running_loop().time()
            self._idle.setdefault(connection.key, []).append(connection)
        else:
            connection.close()
            self._open -= 1
        self._wake_one()

    def _discard(self, connection: Connection) -> None:
        self._release(connection, keep_alive=False)

    def _close_an_idle_connection(self) -> bool:
        """Make room for a connection to another host by closing an idle one."""
        for connections in self._idle.values():
            if connections:
                connections.pop(0).close()
                self._open -= 1
                return True
        return False

    def _wake_one(self) -> None:
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return


async def _send(connection: Connection, request: httpx.Request, stream: object, replayable: bool) -> None:
    """Write the request's head and body (chunked when its length is not known)."""
    url = request.url
    lines = [b"%s %s HTTP/1.1\r\n" % (request.method.encode("ascii"), url.raw_path)]
    lines.extend(b"%s: %s\r\n" % pair for pair in request.headers.raw)
    lines.append(b"\r\n")
    if replayable:
        assert isinstance(stream, httpx.ByteStream)
        lines.extend(stream)
        connection.write(b"".join(lines))
        return
    connection.write(b"".join(lines))
    chunked = request.headers.get("transfer-encoding", "").lower() == "chunked"
    assert isinstance(stream, httpx.AsyncByteStream)
    async for chunk in stream:
        if chunk:
            connection.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
            await connection.drain()
    if chunked:
        connection.write(b"0\r\n\r\n")
    await connection.drain()


class _Body(httpx.AsyncByteStream):
    """A response's body read as it arrives; closing it gives the connection back (or closes
    it, when the body was not read to its end)."""

    def __init__(
        self, transport: HTTPTransport, connection: Connection, request: httpx.Request, timeout: float | None
    ) -> None:
        self._transport = transport
        self._connection = connection
        self._request = request
        self._timeout = timeout
        self._released = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        connection = self._connection
        parser = connection.parser
        try:
            while True:
                if parser.pending:
                    yield parser.take()
                    continue
                if parser.done:
                    break
                await connection.wait(self._timeout, lambda: _error(httpx.ReadTimeout, "timed out", self._request))
        except (ProtocolError, OSError) as exc:
            self._finish(keep_alive=False)
            raise _broken(exc, self._request) from exc
        except BaseException:  # a read timeout, a cancelled check, a reader that stopped early
            self._finish(keep_alive=False)
            raise
        head = parser.head
        self._finish(keep_alive=head is not None and head.keep_alive)

    async def aclose(self) -> None:
        parser = self._connection.parser
        head = parser.head
        self._finish(keep_alive=parser.done and not parser.pending and head is not None and head.keep_alive)

    def _finish(self, keep_alive: bool) -> None:
        if not self._released:
            self._released = True
            self._transport._release(self._connection, keep_alive)


def _error(kind: type[httpx.TransportError], message: str, request: httpx.Request) -> httpx.TransportError:
    error = kind(message)
    error.request = request
    return error


def _broken(exc: BaseException, request: httpx.Request) -> httpx.TransportError:
    """The httpx exception for an exchange that failed after the connection was made."""
    if isinstance(exc, ProtocolError):
        return _error(httpx.RemoteProtocolError, str(exc), request)
    if isinstance(exc, httpx.TransportError):
        return exc
    return _error(httpx.ReadError, str(exc) or type(exc).__name__, request)


@functools.cache
def _unverified_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


#: Host names resolved in the last ``DNS_TTL_S`` seconds (as aiohttp's cache): a name is
#: resolved once for the many connections a run opens to it, not once per connection.
DNS_TTL_S = 10.0
_resolved: dict[tuple[str, int], tuple[float, list[tuple[int, str]]]] = {}


async def _addresses(host: str, port: int) -> list[tuple[int, str]]:
    """``(family, address)`` of ``host``: an IP address as it is, a name from the resolver."""
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
        except OSError:
            continue
        return [(family, host)]
    loop = asyncio.get_running_loop()
    now = loop.time()
    known = _resolved.get((host, port))
    if known is not None and known[0] > now:
        return known[1]
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[tuple[int, str]] = list(
        dict.fromkeys((int(family), str(address[0])) for family, _, _, _, address in infos)
    )
    if len(_resolved) > 1024:
        _resolved.clear()
    _resolved[(host, port)] = (now + DNS_TTL_S, addresses)
    return addresses
