"""The ``http`` fixture: one httpx client per session, tagging every request with the running check's trace.

The client is shared by every check, so the ``traceparent`` header is set per
request from the check running at that moment (an httpx event hook reads the run
context). Transport faults — connection refused, a name that does not resolve, a
TLS failure, a timeout — become one ``TargetError`` line instead of a traceback.
The bytes travel through ``transport.HTTPTransport`` (our HTTP/1.1 connections), with as many
connections as checks run at once.
"""

from __future__ import annotations

import datetime
import functools
import logging
import ssl
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
from httpx._client import ClientState

from fraiseql_checks._version import __version__
from fraiseql_checks.config import Config
from fraiseql_checks.errors import TargetError
from fraiseql_checks.targets.failures import describe_connection_error
from fraiseql_checks.targets.transport import MIN_CONNECTIONS, HTTPTransport
from fraiseql_checks.trace import current_run

DEFAULT_TIMEOUT = 5.0
USER_AGENT = f"fraiseql-checks/{__version__}"
_SNIPPET = 120


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
    if isinstance(exc, httpx.WriteTimeout):
        return f"{where}: timed out sending the request (the server stopped taking its bytes){limit}"
    if isinstance(exc, httpx.TimeoutException):
        return f"{where}: timed out waiting for the answer{limit}"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"{where}: the server broke the HTTP exchange: {exc}"
    return f"{where}: {describe_connection_error(exc, host)}"


def ssl_context(verify: ssl.SSLContext | str | bool | None) -> ssl.SSLContext | bool | None:
    """What httpx's ``verify=`` means, as the transport takes it: a context, ``False``, or
    ``None`` for the default context (certifi's CA bundle, loaded when first needed)."""
    if verify is None or verify is True:
        return None
    if verify is False or isinstance(verify, ssl.SSLContext):
        return verify
    return ssl.create_default_context(cafile=verify)  # a CA bundle's path, as httpx took it


class HTTPClient(httpx.AsyncClient):
    """An ``httpx.AsyncClient`` that sends the running check's ``traceparent`` and turns
    transport faults into ``TargetError`` (``raise ... from`` the httpx exception)."""

    def __init__(self, *, timeout: float = DEFAULT_TIMEOUT, connections: int = MIN_CONNECTIONS, **kwargs: Any) -> None:
        if "transport" not in kwargs:
            kwargs["transport"] = HTTPTransport(connections=connections, verify=ssl_context(kwargs.pop("verify", True)))
        hooks = kwargs.pop("event_hooks", {})
        hooks.setdefault("request", []).insert(0, _add_traceparent)
        headers = {"User-Agent": USER_AGENT, **kwargs.pop("headers", {})}
        super().__init__(timeout=timeout, event_hooks=hooks, headers=headers, **kwargs)
        self.timeout_s = timeout
        #: How many connections the transport keeps open at most (all hosts together).
        self.connections = connections
        self.cookies = self.cookies  # as a _Cookies

    @property
    def cookies(self) -> httpx.Cookies:
        """Cookies sent with every request, and those the answers set (httpx's jar)."""
        return self._cookies

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        self._cookies = _Cookies(cookies)

    def build_request(
        self,
        method: str,
        url: httpx.URL | str,
        *,
        headers: Any = None,
        timeout: Any = httpx.USE_CLIENT_DEFAULT,
        **kwargs: Any,
    ) -> httpx.Request:
        # httpx parses a URL given as text in pure Python at every request (a quarter of its
        # own CPU); checks ask for the same few URLs again and again, and URLs are immutable.
        url = _parsed(url) if isinstance(url, str) else url
        if any(value is not None for value in kwargs.values()) or self.params or self.cookies or url.is_relative_url:
            return super().build_request(method, url, headers=headers, timeout=timeout, **kwargs)
        # A request without a body, query parameters to merge or cookies (most checks' GETs):
        # the same request as httpx builds, its headers put together once instead of five
        # times (half of httpx's CPU per request).
        merged = self.headers
        if headers:
            merged = httpx.Headers(merged)
            merged.update(headers)
        pairs = merged.raw
        names = {name.lower() for name, _ in pairs}
        method = method.upper()
        auto = []
        if b"host" not in names and url.host:
            auto.append((b"Host", url.netloc))
        if method in _BODY_METHODS and b"content-length" not in names and b"transfer-encoding" not in names:
            auto.append((b"Content-Length", b"0"))
        limits = self.timeout if timeout is httpx.USE_CLIENT_DEFAULT else httpx.Timeout(timeout)
        request = httpx.Request(
            method, url, headers=auto + pairs, stream=_NO_BODY, extensions={"timeout": limits.as_dict()}
        )
        request.read()  # as httpx does for a body known up front: request.content is b""
        return request

    async def send(
        self,
        request: httpx.Request,
        *,
        stream: bool = False,
        auth: Any = httpx.USE_CLIENT_DEFAULT,
        follow_redirects: Any = httpx.USE_CLIENT_DEFAULT,
    ) -> httpx.Response:
        try:
            if self._plain(request, auth, follow_redirects):
                return await self._send_plain(request, stream)
            return await super().send(request, stream=stream, auth=auth, follow_redirects=follow_redirects)
        except httpx.TransportError as exc:
            unreachable = not isinstance(exc, (httpx.ReadTimeout, httpx.WriteTimeout, httpx.PoolTimeout))
            raise TargetError(
                describe_transport_error(exc, self.timeout_s), target="http", unreachable=unreachable
            ) from exc

    def _plain(self, request: httpx.Request, auth: Any, follow_redirects: Any) -> bool:
        """Whether ``send`` may skip httpx's auth flow, redirect loop and event hooks: no
        auth (none on the client, none in the URL), redirects not followed, no hooks but
        ours, one transport for every URL, and an open client."""
        hooks = self._event_hooks
        return (
            auth is httpx.USE_CLIENT_DEFAULT
            and self._auth is None
            and not (self.follow_redirects if follow_redirects is httpx.USE_CLIENT_DEFAULT else follow_redirects)
            and hooks["request"] == _OUR_HOOKS
            and not hooks["response"]
            and not self._mounts
            and self._state is _OPENED
            and isinstance(request.stream, httpx.AsyncByteStream)
            and not request.url.userinfo
        )

    async def _send_plain(self, request: httpx.Request, stream: bool) -> httpx.Response:
        """What ``httpx.AsyncClient.send`` does for a request without auth whose redirects
        are not followed, in one call instead of three generators and a hook loop (a
        third of httpx's CPU per request): the same response, cookies, ``elapsed``,
        ``next_request`` and log line."""
        if "timeout" not in request.extensions:
            request.extensions = {**request.extensions, "timeout": self.timeout.as_dict()}
        _set_traceparent(request)
        start = time.perf_counter()
        response = await self._transport.handle_async_request(request)
        response.request = request
        response.default_encoding = self._default_encoding
        self.cookies.extract_cookies(response)
        if _log.isEnabledFor(logging.INFO):
            _log.info(
                'HTTP Request: %s %s "%s %d %s"',
                request.method,
                request.url,
                response.http_version,
                response.status_code,
                response.reason_phrase,
            )
        body = response.stream
        if isinstance(body, httpx.ByteStream) and not stream:  # the whole body came with the headers
            response.read()  # decodes Content-Encoding, as aread() does
            response.elapsed = datetime.timedelta(seconds=time.perf_counter() - start)
        else:  # read later: elapsed is known once the body is closed, as with httpx's own path
            assert isinstance(body, httpx.AsyncByteStream)
            response.stream = _Timed(body, response, start)
        try:
            if response.has_redirect_location:
                response.next_request = self._build_redirect_request(request, response)
            if not stream:
                await response.aread()
        except BaseException:
            await response.aclose()
            raise
        return response


_NO_BODY = httpx.ByteStream(b"")
_BODY_METHODS = frozenset(("POST", "PUT", "PATCH"))


@functools.lru_cache(maxsize=1024)
def _parsed(url: str) -> httpx.URL:
    return httpx.URL(url)


class _Cookies(httpx.Cookies):
    """httpx's cookie jar, that skips reading an answer which sets no cookie: the standard
    library's cookie code wraps the request and the answer first (a fifth of httpx's CPU
    per request)."""

    def extract_cookies(self, response: httpx.Response) -> None:
        headers = response.headers
        if "set-cookie" in headers or "set-cookie2" in headers:
            super().extract_cookies(response)


def _set_traceparent(request: httpx.Request) -> None:
    run = current_run.get()
    if run is not None:
        request.headers["traceparent"] = run.traceparent


async def _add_traceparent(request: httpx.Request) -> None:
    """The event hook that sets it on httpx's own path (the short path calls ``_set_traceparent``)."""
    _set_traceparent(request)


_OUR_HOOKS = [_add_traceparent]
#: The state of a client that has sent a request: the first request takes httpx's own path,
#: which opens the client (and refuses a closed one).
_OPENED = ClientState.OPENED
_log = logging.getLogger("httpx")  # httpx's logger: the same line as httpx logs


class _Timed(httpx.AsyncByteStream):
    """A streamed body that sets the response's ``elapsed`` when closed, as httpx's own wrapper."""

    def __init__(self, stream: httpx.AsyncByteStream, response: httpx.Response, start: float) -> None:
        self._stream = stream
        self._response = response
        self._start = start

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        self._response.elapsed = datetime.timedelta(seconds=time.perf_counter() - self._start)
        await self._stream.aclose()


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
    """A client with the configured timeout (``http_timeout``) and as many connections as
    checks may run at once (``concurrency``), so that no check waits for another's."""
    connections = max(MIN_CONNECTIONS, int(config.get("concurrency")))
    return HTTPClient(timeout=float(config.get("http_timeout")), connections=connections, **kwargs)
