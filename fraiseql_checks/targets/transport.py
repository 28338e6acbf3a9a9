"""The transport under the fixtures' httpx client: httpx's requests and responses, on our own HTTP/1.1 connections.

Checks write httpx (``httpx.Request``, ``httpx.Response``, ``raise_for_status()``,
``response.json()``); only the bytes on the wire go through ``http1`` (an asyncio
protocol and parser). httpcore's pool and its anyio/sniffio calls cost 0.5–0.8 ms of
CPU per request; aiohttp, used here before, about what this transport and httpx's
client cost together, plus an import of 0.1–0.2 s (docs/performance.md, "HTTP checks").

What this transport keeps from httpx's own: keep-alive connections per host, the
per-request ``connect`` and ``read`` timeouts, request bodies (bytes or streamed),
streamed responses, header names as the caller spelled them, no redirects (the
client follows them), bodies left encoded (the client decodes them), and failures as
httpx's exception classes with the original error as ``__cause__``, the ``write``
timeout on each wait for the server to take the request's bytes. An idempotent request
sent on a kept-alive connection that the server had closed meanwhile is sent again
once on a new connection. What it does not do: HTTP/2, a ``pool`` timeout (the pool
is sized from the run's concurrency instead; a check's own timeout bounds a wait),
proxies (httpx mounts its own transport for the proxies named in the environment).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import socket
import ssl
from asyncio import staggered
from collections.abc import AsyncIterator, Callable

import certifi
import httpx

from fraiseql_checks.targets.http1 import Connection, ProtocolError
from fraiseql_checks.timing import own_timeout

#: Connections kept per transport when the run's concurrency is lower than this: a check
#: may send several requests at once, and checks share the client.
MIN_CONNECTIONS = 100
#: How long an idle keep-alive connection is kept (httpx's default ``keepalive_expiry``).
KEEPALIVE_S = 5.0
#: Connections being opened at once to one host; a request beyond it waits for one of them or for a
#: connection another request gives back, whichever comes first. When 1,000 checks start
#: together against a quick server, the first answers come back before 1,000 connections
#: would have been opened, and the requests after them take those connections instead.
CONNECTING_AT_ONCE = 64
#: Happy Eyeballs: how long one address of a host is tried before the next one is too.
HAPPY_EYEBALLS_S = 0.25
#: Methods a request may be sent again for (RFC 9110, 9.2.2), when the kept-alive
#: connection it went out on turns out closed before any answer.
_IDEMPOTENT = frozenset(("GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"))

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
        #: Kept-alive connections per host, the most recently used last.
        self._idle: dict[_Key, list[Connection]] = {}
        self._open = 0  # connections open or opening, idle ones included
        #: Connections being opened, per host.
        self._connecting: collections.Counter[_Key] = collections.Counter()
        #: Requests waiting for a connection, per host, first come first served. A waiter is
        #: handed a connection given back for its host, or woken (``None``) to try again.
        self._waiting: dict[_Key, collections.deque[asyncio.Future[Connection | None]]] = {}
        self._busy: set[Connection] = set()
        self._closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        scheme = url.scheme
        if scheme not in ("http", "https"):
            raise _error(httpx.UnsupportedProtocol, f"Request URL has an unsupported protocol '{scheme}://'", request)
        port = url.port or (443 if scheme == "https" else 80)
        # The ASCII form of the host (IDNA 2008, as httpx writes it in the Host header) for the
        # resolver and TLS's server name too.
        key = (scheme, url.raw_host.decode("ascii"), port, request.extensions.get("sni_hostname"))
        limits = request.extensions.get("timeout") or {}
        read_timeout = limits.get("read")
        stream = request.stream
        replayable = isinstance(stream, httpx.ByteStream)
        method = request.method
        request_head, closing = _request_head(request)
        for attempt in (1, 2):
            connection = await self._acquire(key, request, limits.get("connect"), fresh=attempt == 2)
            connection.start(method == "HEAD")
            try:
                if replayable:  # bytes known up front: one write
                    connection.write(request_head + b"".join(stream))  # type: ignore[arg-type]
                    if connection.paused_writing:  # a large body: the read timeout starts once it is sent
                        await connection.drain(limits.get("write"), _timeout_of(httpx.WriteTimeout, request))
                else:
                    await _send_streamed(connection, request, request_head, limits.get("write"))
                while connection.parser.head is None:
                    await connection.wait(read_timeout, _timeout_of(httpx.ReadTimeout, request))
            except (ProtocolError, OSError) as exc:
                self._discard(connection)
                nothing_read = connection.parser.head is None and not connection.parser.pending
                if attempt == 1 and connection.reused and replayable and nothing_read and method in _IDEMPOTENT:
                    continue  # a kept-alive connection the server had closed: once more on a new one
                raise _broken(exc, request) from exc
            except BaseException:
                self._discard(connection)
                raise
            break
        head = connection.parser.head
        assert head is not None
        if closing:
            head.keep_alive = False  # the request said it would be the connection's last
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
        for waiters in self._waiting.values():
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)  # wakes to find the transport closed
        self._waiting.clear()

    # the pool

    async def _acquire(
        self, key: _Key, request: httpx.Request, connect_timeout: float | None, fresh: bool = False
    ) -> Connection:
        """A connection to ``key``: a kept-alive one (unless ``fresh``), a new one, or the
        next one given back for this host, whichever comes first."""
        loop = asyncio.get_running_loop()
        while True:
            if self._closed:
                raise RuntimeError("the HTTP transport is closed")
            idle = None if fresh else self._idle.get(key)
            while idle:
                connection = idle.pop()
                if connection.closed or loop.time() - connection.idle_since > KEEPALIVE_S:
                    self._drop(connection)
                    continue
                connection.reused = True
                self._busy.add(connection)
                return connection
            if self._connecting[key] >= CONNECTING_AT_ONCE or (
                self._open >= self.connections and not self._close_an_idle_connection()
            ):
                handed = await self._wait_turn(key, loop)
                if handed is not None:
                    return handed
                continue
            self._open += 1
            self._connecting[key] += 1
            try:
                connection = await self._connect(key, request, connect_timeout)
            except BaseException:
                self._open -= 1
                raise
            finally:
                self._connecting[key] -= 1
                if not self._connecting[key]:
                    del self._connecting[key]
                self._wake(key)  # the next in line for this host may open a connection now
            self._busy.add(connection)
            return connection

    async def _wait_turn(self, key: _Key, loop: asyncio.AbstractEventLoop) -> Connection | None:
        waiter: asyncio.Future[Connection | None] = loop.create_future()
        waiters = self._waiting.setdefault(key, collections.deque())
        waiters.append(waiter)
        try:
            return await waiter
        except BaseException:  # cancelled (the check's timeout): what it was given goes on
            if waiter.done() and not waiter.cancelled():
                handed = waiter.result()
                if handed is not None:
                    self._release(handed, keep_alive=True)
                else:
                    self._wake(key)
            else:
                with contextlib.suppress(ValueError):  # already taken off by a wake-up
                    waiters.remove(waiter)
                if not waiters and self._waiting.get(key) is waiters:
                    del self._waiting[key]
            raise

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
        server_hostname = (sni or host) if context is not None else None

        async def attempt(family: int, address: str) -> Connection:
            _, connection = await loop.create_connection(
                lambda: Connection(key), address, port, family=family, ssl=context, server_hostname=server_hostname
            )
            return connection

        try:
            async with own_timeout(timeout):  # a neighbour holding the loop does not time it out
                addresses = await _addresses(host, port)
                if len(addresses) == 1:
                    return await attempt(*addresses[0])
                # Happy Eyeballs (RFC 8305), as asyncio and aiohttp: the next address is tried
                # 0.25 s after the one before it, so an address that drops packets (a broken
                # IPv6 route) does not take the whole connect timeout.
                winner, _, errors = await staggered.staggered_race(
                    [functools.partial(attempt, family, address) for family, address in addresses], HAPPY_EYEBALLS_S
                )
                if winner is None:
                    raise next((e for e in errors if e is not None), OSError(f"no address for {host!r}"))
                assert isinstance(winner, Connection)
                return winner
        except TimeoutError as exc:
            raise _error(httpx.ConnectTimeout, "timed out connecting", request) from exc
        except OSError as exc:  # refused, DNS (socket.gaierror), TLS (ssl.SSLError)
            raise _error(httpx.ConnectError, str(exc) or type(exc).__name__, request) from exc

    def _release(self, connection: Connection, keep_alive: bool) -> None:
        """The exchange on ``connection`` is over: hand it to the next request for its host,
        keep it for a later one, or close it."""
        self._busy.discard(connection)
        key = connection.key
        if not (keep_alive and not connection.closed and not self._closed):
            connection.close()
            self._open -= 1
            self._wake(key)
            return
        if connection.paused_reading:
            connection.resume()
        waiter = _first_waiting(self._waiting.get(key))
        if waiter is not None:
            connection.reused = True
            self._busy.add(connection)
            waiter.set_result(connection)
            return
        now = asyncio.get_running_loop().time()
        connection.idle_since = now
        idle = self._idle.setdefault(key, [])
        while idle and (idle[0].closed or now - idle[0].idle_since > KEEPALIVE_S):
            self._drop(idle.pop(0))  # the least recently used, past their keep-alive time
        idle.append(connection)
        if self._waiting:
            self._wake_another()

    def _discard(self, connection: Connection) -> None:
        self._release(connection, keep_alive=False)

    def _drop(self, connection: Connection) -> None:
        connection.close()
        self._open -= 1

    def _close_an_idle_connection(self) -> bool:
        """Make room for a connection to another host by closing an idle one."""
        for key, connections in self._idle.items():
            if connections:
                self._drop(connections.pop(0))
                if not connections:
                    del self._idle[key]
                return True
        return False

    def _wake(self, key: _Key) -> None:
        """Wake the first request waiting for ``key`` (to take or open a connection), or, when
        none waits for it, one waiting for another host that may open a connection."""
        waiter = _first_waiting(self._waiting.get(key))
        if waiter is not None:
            waiter.set_result(None)
            return
        self._waiting.pop(key, None)
        self._wake_another()

    def _wake_another(self) -> None:
        """Wake the first waiter of a host that has room to open a connection (a connection
        given back and kept idle may be closed to make that room)."""
        for key, waiters in list(self._waiting.items()):
            if self._connecting[key] >= CONNECTING_AT_ONCE:
                continue
            waiter = _first_waiting(waiters)
            if not waiters:
                del self._waiting[key]
            if waiter is not None:
                waiter.set_result(None)
                return


def _first_waiting(
    waiters: collections.deque[asyncio.Future[Connection | None]] | None,
) -> asyncio.Future[Connection | None] | None:
    """Take the first waiter that still waits (cancelled ones are dropped on the way)."""
    while waiters:
        waiter = waiters.popleft()
        if not waiter.done():
            return waiter
    return None


def _request_head(request: httpx.Request) -> tuple[bytes, bool]:
    """The request line and headers as bytes, and whether they say ``Connection: close``."""
    lines = [b"%s %s HTTP/1.1\r\n" % (request.method.encode("ascii"), request.url.raw_path)]
    lines.extend(b"%s: %s\r\n" % pair for pair in request.headers.raw)
    lines.append(b"\r\n")
    head = b"".join(lines)
    # Each line ends in the one CR LF put there: a CR, LF or NUL in a header's name or
    # value would start a header (or a request) the caller did not write.
    if head.count(b"\n") != len(lines) or head.count(b"\r") != len(lines) or b"\0" in head:
        raise _error(httpx.LocalProtocolError, "a header name or value holds a CR, LF or NUL", request)
    lowered = head.lower()
    at = lowered.find(b"\r\nconnection:")
    closing = at >= 0 and b"close" in lowered[at + 13 : lowered.find(b"\r\n", at + 13)]
    return head, closing


async def _send_streamed(connection: Connection, request: httpx.Request, head: bytes, timeout: float | None) -> None:
    """Write the request's head and its streamed body (chunked when its length is not
    known); each wait for the server to take the bytes is bounded by the ``write`` timeout."""
    write_timeout = _timeout_of(httpx.WriteTimeout, request)
    connection.write(head)
    chunked = request.headers.get("transfer-encoding", "").lower() == "chunked"
    stream = request.stream
    assert isinstance(stream, httpx.AsyncByteStream)
    async for chunk in stream:
        if chunk:
            connection.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
            await connection.drain(timeout, write_timeout)
    if chunked:
        connection.write(b"0\r\n\r\n")
    await connection.drain(timeout, write_timeout)


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
                await connection.wait(self._timeout, _timeout_of(httpx.ReadTimeout, self._request))
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


def _timeout_of(kind: type[httpx.TransportError], request: httpx.Request) -> Callable[[], httpx.TransportError]:
    """What a wait that ran out of time raises: httpx's ``kind`` of timeout, for ``request``."""
    return functools.partial(_error, kind, "timed out", request)


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
