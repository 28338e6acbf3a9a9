"""The transport under the fixtures' httpx client: httpx's requests and responses, sent by aiohttp.

Checks write httpx (``httpx.Request``, ``httpx.Response``, ``raise_for_status()``,
``response.json()``); only the bytes on the wire go through aiohttp. httpcore's pool
and its anyio/sniffio calls cost 0.5–0.8 ms of CPU per request, aiohttp's C parser
and connection pool about a tenth of that (docs/performance.md, "HTTP checks").

What this transport keeps from httpx's own: keep-alive connections per host, the
per-request ``connect`` and ``read`` timeouts, request bodies (bytes or streamed),
streamed responses, header names as the caller spelled them, no redirects (the
client follows them), bodies left encoded (the client decodes them), and aiohttp's
failures as httpx's exception classes with the original error as ``__cause__``.
What it does not do: HTTP/2, a ``write`` timeout, a ``pool`` timeout (the pool is
sized from the run's concurrency instead; a check's own timeout bounds a wait).
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import certifi
import httpx
import yarl

#: Connections kept per transport when the run's concurrency is lower than this: a check
#: may send several requests at once, and checks share the client.
MIN_CONNECTIONS = 100
#: How long an idle keep-alive connection is kept (httpx's default ``keepalive_expiry``).
KEEPALIVE_S = 5.0
#: Response header lines up to this size (aiohttp's default of 8 KiB refuses the long
#: ``Content-Security-Policy`` and cookie headers some servers send; h11 allowed 16 KiB).
MAX_HEADER_BYTES = 65536
#: Headers aiohttp adds on its own (and ``Content-Type`` to a body of bytes).
_NOT_ADDED = ("Accept", "Accept-Encoding", "User-Agent")


@functools.cache
def default_ssl_context() -> ssl.SSLContext:
    """One context for every client: loading the CA bundle costs about 35 ms each time."""
    return ssl.create_default_context(cafile=certifi.where())


class AiohttpTransport(httpx.AsyncBaseTransport):
    """An ``httpx.AsyncBaseTransport`` that sends each request with one ``aiohttp.ClientSession``.

    ``connections`` caps the open connections (all hosts together); a request beyond
    it waits for one to be free. ``verify`` is an ``ssl.SSLContext`` or ``False``
    (no certificate checks). The aiohttp session is opened on the first request,
    on the loop that sends it.
    """

    def __init__(self, *, connections: int = MIN_CONNECTIONS, verify: ssl.SSLContext | bool | None = None) -> None:
        if connections < 1:
            raise ValueError(f"connections must be at least 1, not {connections}")
        self.connections = connections
        #: ``None``: certifi's CA bundle (as httpx), loaded on the first HTTPS request (35 ms
        #: or more of start-up that a run of plain-HTTP checks does not need).
        self._ssl: ssl.SSLContext | bool | None = verify
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[tuple[float | None, float | None], aiohttp.ClientTimeout] = {}

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self.connections,
            limit_per_host=0,
            ssl=True if self._ssl is None else self._ssl,  # None: each HTTPS request names the context
            keepalive_timeout=KEEPALIVE_S,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),  # httpx keeps the cookies
            auto_decompress=False,  # httpx decodes per Content-Encoding
            requote_redirect_url=False,
            timeout=aiohttp.ClientTimeout(total=None),
            max_line_size=MAX_HEADER_BYTES,
            max_field_size=MAX_HEADER_BYTES,
        )
        return self._session

    def _timeout(self, request: httpx.Request) -> aiohttp.ClientTimeout:
        limits = request.extensions.get("timeout") or {}
        key = (limits.get("connect"), limits.get("read"))
        timeout = self._timeouts.get(key)
        if timeout is None:
            # sock_connect: the TCP and TLS handshake; sock_read: each wait for bytes,
            # as httpx's read timeout. No limit on waiting for a pooled connection.
            timeout = aiohttp.ClientTimeout(total=None, sock_connect=key[0], sock_read=key[1])
            if len(self._timeouts) < 64:
                self._timeouts[key] = timeout
        return timeout

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._session or self._open()
        given = request.headers
        encoding = given.encoding
        headers = [(name.decode(encoding), value.decode(encoding)) for name, value in given.raw]
        names = {name.lower() for name, _ in headers}
        body: bytes | AsyncIterator[bytes] | None
        sent = request.stream
        if isinstance(sent, httpx.ByteStream):  # bytes known up front (a redirect's: not yet read)
            body = b"".join(sent) or None
        else:
            body = _streamed(sent)
            # aiohttp frames a body of unknown length itself, and refuses the header.
            headers = [(name, value) for name, value in headers if name.lower() != "transfer-encoding"]
        # aiohttp adds Accept, User-Agent, ... when they are missing; httpx already set
        # those it wants, so a missing one was removed on purpose (asking aiohttp to skip
        # them on every request would cost it a copy of the headers each time).
        skip = [name for name in _NOT_ADDED if name.lower() not in names]
        if body is not None and "content-type" not in names:
            skip.append("Content-Type")
        target = yarl.URL(str(request.url), encoded=True)
        if request.url.userinfo:  # httpx sent them as an Authorization header, as httpcore does
            target = target.with_user(None)
        try:
            answer = await session.request(
                request.method,
                target,
                headers=headers,
                data=body,
                skip_auto_headers=skip or None,
                allow_redirects=False,
                timeout=self._timeout(request),
                server_hostname=request.extensions.get("sni_hostname"),
                ssl=default_ssl_context() if self._ssl is None and request.url.scheme == "https" else True,
            )
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise as_httpx_error(exc, request) from exc
        content = answer.content
        stream: httpx.AsyncByteStream
        if content.is_eof() and content.exception() is None:
            # The whole body came with the headers (most answers): no reads to wait for,
            # and the connection is back in the pool already.
            stream = httpx.ByteStream(content.read_nowait())
            answer.release()
        else:
            stream = _ResponseBody(answer, request)
        return httpx.Response(
            status_code=answer.status,
            headers=answer.raw_headers,
            stream=stream,
            request=request,
            extensions={
                "http_version": f"HTTP/{answer.version.major}.{answer.version.minor}".encode()
                if answer.version
                else b"HTTP/1.1",
                "reason_phrase": (answer.reason or "").encode("latin-1", "replace"),
            },
        )

    async def aclose(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()


async def _streamed(stream: Any) -> AsyncIterator[bytes]:
    async for chunk in stream:
        yield chunk


class _ResponseBody(httpx.AsyncByteStream):
    """An aiohttp response's body, read as httpx reads a stream; closing it frees the connection."""

    def __init__(self, answer: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._answer = answer
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        content = self._answer.content
        try:
            while chunk := await content.readany():
                yield chunk
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise as_httpx_error(exc, self._request) from exc

    async def aclose(self) -> None:
        self._answer.release()


def as_httpx_error(exc: BaseException, request: httpx.Request | None = None) -> httpx.TransportError:
    """The httpx exception for an aiohttp failure (the caller raises it ``from exc``).

    The split follows httpcore's: failures before a connection is there are
    ``ConnectError``/``ConnectTimeout`` (the target is unreachable); a timeout waiting
    for the answer is ``ReadTimeout``; a server that breaks the exchange is
    ``RemoteProtocolError``; a connection that fails mid-way is ``ReadError``.
    """
    message = str(exc) or type(exc).__name__
    error: httpx.TransportError
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        error = httpx.ConnectTimeout(message)
    elif isinstance(exc, TimeoutError):  # aiohttp's SocketTimeoutError and ServerTimeoutError too
        error = httpx.ReadTimeout(message)
    elif isinstance(exc, aiohttp.ClientConnectorError):  # refused, DNS, TLS
        error = httpx.ConnectError(message)
    elif isinstance(exc, aiohttp.ServerDisconnectedError):
        error = httpx.RemoteProtocolError("the server closed the connection without answering")
    elif isinstance(exc, (aiohttp.ClientPayloadError, aiohttp.ClientResponseError)):
        error = httpx.RemoteProtocolError(message)
    elif isinstance(exc, (aiohttp.NonHttpUrlClientError, aiohttp.InvalidURL)):
        error = httpx.UnsupportedProtocol(message)
    else:
        error = httpx.ReadError(message)
    if request is not None:
        error.request = request
    return error
