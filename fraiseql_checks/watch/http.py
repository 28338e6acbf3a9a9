"""The watcher's HTTP server: ``/metrics``, ``/healthz``, ``/readyz``, and an ASGI app.

It runs on the watcher's event loop. HTTP/1.1 parsing is h11's (the protocol
library under httpx), so keep-alive, pipelining and malformed requests are
handled by code made for it. ``routes`` are the watcher's own pages (``GET`` and
``HEAD``, answered without a framework: a scrape is the hot path); every other
request goes to ``app``, an ASGI application (the API and the status page, on
Starlette), with its body read whole first, at most ``max_body`` bytes (413).

No client can blind the watcher by holding connections: their number is capped,
and at the cap a new connection evicts the one that has waited longest for a
request (never one receiving a response), so a probe gets through a flood of
half-sent requests. A request head must arrive within ``head_timeout``, a
kept-alive connection may idle for ``keep_alive_timeout``, and a client that
stops reading its response is dropped after ``write_timeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import http
import inspect
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from typing import Any, cast
from urllib.parse import unquote_to_bytes

import h11

from fraiseql_checks._version import __version__

_MAX_REQUEST = 16 * 1024
#: After a 413 the rest of the body is read and dropped for at most this long, so that
#: the client, still sending, reads the answer instead of a connection reset.
_LINGER = 2.0
_BATCH = 1024 * 1024
_SERVER = f"fraiseql-check/{__version__}".encode()
_BUSY_BODY = b"every connection of this watcher is busy answering; try again\n"
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: %d\r\n"
    b"connection: close\r\n"
    b"retry-after: 1\r\n"
    b"server: %s\r\n\r\n%s"
) % (len(_BUSY_BODY), _SERVER, _BUSY_BODY)


@dataclasses.dataclass(frozen=True)
class Page:
    status: int
    #: The body, whole or in pieces (sent in batches of about ``_BATCH`` bytes).
    body: bytes | Sequence[bytes]
    content_type: str = "text/plain; charset=utf-8"
    #: More response headers (lower-case names), e.g. ``content-encoding``.
    headers: Sequence[tuple[bytes, bytes]] = ()

    def pieces(self) -> Sequence[bytes]:
        return [self.body] if isinstance(self.body, bytes) else self.body


@dataclasses.dataclass(frozen=True)
class Request:
    """What a route handler may look at: the method, path, query and headers (lower-case names)."""

    method: str
    path: str
    query: bytes
    headers: Sequence[tuple[bytes, bytes]]

    def header(self, name: bytes) -> bytes:
        """The values of header ``name`` joined by commas, ``b""`` when absent."""
        return b", ".join(value for key, value in self.headers if key == name)


#: A page: called with the ``Request`` when it takes an argument, else with none.
Handler = Callable[[Request], Page | Awaitable[Page]] | Callable[[], Page | Awaitable[Page]]
#: An ASGI application (``scope``, ``receive``, ``send``).
ASGIApp = Callable[
    [dict[str, Any], Callable[[], Awaitable[dict[str, Any]]], Callable[[dict[str, Any]], Awaitable[None]]],
    Awaitable[None],
]


@functools.lru_cache(maxsize=256)
def _takes_request(handler: Handler) -> bool:
    try:
        return bool(inspect.signature(handler).parameters)
    except (TypeError, ValueError):
        return False


def batches(pieces: Iterable[bytes], size: int) -> Iterator[bytes]:
    """``pieces`` joined into batches of at least ``size`` bytes (but the last, and one
    followed by a piece of ``size`` or more, which goes alone, not copied); none empty."""
    batch: list[bytes] = []
    total = 0
    for piece in pieces:
        if len(piece) >= size:
            if total:
                yield b"".join(batch)
                batch, total = [], 0
            yield piece
            continue
        batch.append(piece)
        total += len(piece)
        if total >= size:
            yield b"".join(batch)
            batch, total = [], 0
    if total:
        yield b"".join(batch)


def _reason(status: int) -> bytes:
    try:
        return http.HTTPStatus(status).phrase.encode()
    except ValueError:
        return b""


class HTTPServer:
    """Serves ``routes`` (path → handler) on one address to at most ``max_connections`` clients.

    ``max_connections`` defaults to 256: the watcher's real clients (a Prometheus
    pair, the kubelet's probes, someone with curl) need a handful, and 256 sockets
    are a quarter of the usual 1024 file descriptors, leaving the rest to checks.
    In a flood asyncio holds up to about 300 more for an instant: it accepts up to
    100 at a time before the server sees them, and closes evicted ones a turn later.
    ``head_timeout`` bounds how long a request head may take to arrive whole, from
    the connection's start or, on a kept-alive connection, from its first byte;
    ``keep_alive_timeout`` bounds how long a kept-alive connection may wait for that
    first byte; ``write_timeout`` bounds how long one write of a response may wait
    for the client to read it.

    The counters (plain ints, for ``/metrics``): ``connections_open``,
    ``connections_accepted_total`` (every connection, also those then turned away),
    ``connections_evicted_total`` (closed to make room for a new one),
    ``connections_rejected_total`` (answered 503 because every open one was busy
    answering) and ``requests_timed_out_total`` (a head not whole within
    ``head_timeout`` or a response not read within ``write_timeout``; an idle
    kept-alive connection closed on time is not counted).
    """

    def __init__(
        self,
        *,
        max_connections: int = 256,
        head_timeout: float = 10.0,
        keep_alive_timeout: float = 20.0,
        write_timeout: float = 10.0,
        max_body: int = 1024 * 1024,
        app_concurrency: int = 2,
    ) -> None:
        if max_connections < 1:
            raise ValueError(f"max_connections must be at least 1, not {max_connections}")
        self.routes: dict[str, Handler] = {}
        #: Serves what ``routes`` do not (``None``: 404).
        self.app: ASGIApp | None = None
        #: The largest request body read (a bigger one is answered 413).
        self.max_body = max_body
        #: How many requests the app works on at once. The app shares the event loop with
        #: the checks' scheduler: a flood of API requests, each some milliseconds of work,
        #: would otherwise run back to back in one turn of the loop while runs wait. In
        #: this lane, the scheduler's due runs start between two requests.
        self.app_concurrency = app_concurrency
        self._app_lane: asyncio.Semaphore | None = None
        self.address = ""
        self.max_connections = max_connections
        self.head_timeout = head_timeout
        self.keep_alive_timeout = keep_alive_timeout
        self.write_timeout = write_timeout
        self.connections_open = 0
        self.connections_accepted_total = 0
        self.connections_evicted_total = 0
        self.connections_rejected_total = 0
        self.requests_timed_out_total = 0
        self._server: asyncio.Server | None = None
        self._open: set[_Connection] = set()
        # Connections waiting for a request (or the rest of one), longest-waiting first:
        # the eviction order, kept in O(1) per change.
        self._waiting: OrderedDict[_Connection, None] = OrderedDict()

    async def start(self, host: str, port: int) -> None:
        """Listen; ``OSError`` when the address is taken or not ours."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Connection(self), host, port, reuse_address=True)
        sockname = self._server.sockets[0].getsockname()
        self.address = f"{host}:{sockname[1]}"

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            tasks = [conn.task for conn in self._open if conn.task is not None]
            for conn in list(self._open):
                conn.abort()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
            self._server = None

    def _admit(self, conn: _Connection) -> None:
        self.connections_accepted_total += 1
        if len(self._open) >= self.max_connections:
            if not self._waiting:
                self.connections_rejected_total += 1
                conn.turn_away()
                return
            oldest, _ = self._waiting.popitem(last=False)
            self.connections_evicted_total += 1
            oldest.abort()
        self._open.add(conn)
        self.connections_open = len(self._open)
        conn.wait(self.head_timeout)

    def _forget(self, conn: _Connection) -> None:
        self._waiting.pop(conn, None)
        self._open.discard(conn)
        self.connections_open = len(self._open)

    def _route(self, request: h11.Request) -> Page | Awaitable[Page] | None:
        """What a route makes of ``request``, at once: its page, or what to await for it;
        ``None`` when no route serves it (the app does, or nothing: 404, 405)."""
        path, _, query = request.target.decode("latin-1").partition("?")
        handler = self.routes.get(path)
        if handler is None or request.method not in (b"GET", b"HEAD"):
            return None
        if _takes_request(handler):
            method = request.method.decode("latin-1")
            page = handler(Request(method, path, query.encode("latin-1"), request.headers))  # type: ignore[call-arg]
        else:
            page = handler()  # type: ignore[call-arg]
        if page is None:  # not "no route": the route is there and failed
            raise TypeError(f"the route {path} made no page")
        return page

    async def _page(
        self, request: h11.Request, body: bytes, client: tuple[str, int] | None, routed: Awaitable[Page] | None
    ) -> Page:
        """The page of a request ``_route`` did not answer at once: ``routed``, the route's
        page to await, or (``None``: no route serves it) the app's answer, a 404 or a 405."""
        if routed is not None:
            return await routed
        path, _, query = request.target.decode("latin-1").partition("?")
        if self.app is None:
            if request.method not in (b"GET", b"HEAD"):
                return Page(405, b"only GET and HEAD\n")
            listing = "".join(f"{p}\n" for p in sorted(self.routes))
            return Page(404, f"not found; this watcher serves:\n{listing}".encode())
        if self._app_lane is None:
            self._app_lane = asyncio.Semaphore(self.app_concurrency)
        async with self._app_lane:
            await asyncio.sleep(0)  # what became due meanwhile (a run) goes first
            return await self._call_app(self.app, request, path, query, body, client)

    async def _call_app(
        self, app: ASGIApp, request: h11.Request, path: str, query: str, body: bytes, client: tuple[str, int] | None
    ) -> Page:
        """Run ``app`` on one request whose body was read whole; its response as a ``Page``."""
        host, _, port = self.address.rpartition(":")
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": request.http_version.decode("latin-1"),
            "method": request.method.decode("latin-1"),
            "scheme": "http",
            "path": unquote_to_bytes(path).decode("utf-8", "replace"),
            "raw_path": path.encode("latin-1"),
            "query_string": query.encode("latin-1"),
            "root_path": "",
            "headers": [(bytes(name).lower(), bytes(value)) for name, value in request.headers],
            "client": client,
            "server": (host, int(port or 0)),
            "state": {},
        }
        sent_body = False
        status = 500
        headers: list[tuple[bytes, bytes]] = []
        pieces: list[bytes] = []
        done = asyncio.Event()

        async def receive() -> dict[str, Any]:
            nonlocal sent_body
            if not sent_body:
                sent_body = True
                return {"type": "http.request", "body": body, "more_body": False}
            await done.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status, headers
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = [(bytes(k).lower(), bytes(v)) for k, v in message.get("headers", ())]
            elif message["type"] == "http.response.body":
                pieces.append(bytes(message.get("body", b"")))
                if not message.get("more_body", False):
                    done.set()

        try:
            await app(scope, receive, send)
        except Exception:
            if not done.is_set():
                raise
            # the app answered (its error page) and then re-raised, as Starlette does for a 500
        finally:
            done.set()
        content_type = next((v for k, v in headers if k == b"content-type"), b"text/plain; charset=utf-8")
        extra = [(k, v) for k, v in headers if k not in (b"content-type", b"content-length", b"server")]
        return Page(status, pieces, content_type.decode("latin-1"), extra)


#: The batches of a response's body not written yet.
_Rest = Iterator[bytes]
#: The page of a route that failed (the log says why).
_FAILED = Page(500, b"internal error; the watcher's log says why\n")


class _Dropped(Exception):
    """The connection was aborted while a response was being written."""


class _Connection(asyncio.Protocol):
    """One client: waits for a request under a deadline, answers it, repeats."""

    transport: asyncio.Transport

    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self.loop = asyncio.get_running_loop()
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=_MAX_REQUEST)
        #: The response being made and sent; while it runs the connection is busy.
        self.task: asyncio.Task[None] | None = None
        self.timer: asyncio.TimerHandle | None = None
        #: Bytes of a request have arrived, so the head deadline (not the idle one) runs.
        self.receiving = False
        self.paused = False
        self.writable: asyncio.Future[None] | None = None
        #: A request whose body is being read, and the body so far.
        self.request: h11.Request | None = None
        self.body: list[bytes] = []
        self.body_size = 0
        #: Answered 413 and half-closed: what still arrives is dropped.
        self.discarding = False

    # -- asyncio's calls -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.server._admit(self)

    def data_received(self, data: bytes) -> None:
        if self.discarding:
            return
        self.h11.receive_data(data)
        if self.task is None:
            if not self.receiving:
                self._deadline(self.server.head_timeout, self._head_timed_out)
                self.receiving = True
            self._advance()

    def eof_received(self) -> bool:
        if self.discarding:
            self.close()
            return True
        self.h11.receive_data(b"")
        if self.task is None:
            self._advance()
        return True  # a half-closed client still gets its answer; _advance closes

    def connection_lost(self, exc: Exception | None) -> None:
        self.server._forget(self)
        self._cancel_timer()
        if self.task is not None:
            self.task.cancel()

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        if self.writable is not None and not self.writable.done():
            self.writable.set_result(None)

    # -- states ----------------------------------------------------------------------------

    def wait(self, timeout: float) -> None:
        """Wait, evictable, for a request or the rest of one; ``timeout`` from now."""
        self.server._waiting[self] = None
        self.receiving = True
        self._deadline(timeout, self._head_timed_out)

    def _wait_after_response(self) -> None:
        pending = self.h11.their_state is not h11.IDLE or bool(self.h11.trailing_data[0])
        if pending:
            self.wait(self.server.head_timeout)
        else:
            self.server._waiting[self] = None
            self.receiving = False
            self._deadline(self.server.keep_alive_timeout, self.abort)

    def _advance(self) -> None:
        """Act on what h11 has parsed: answer a request, drop body bytes, or wait for more."""
        if self.transport.is_closing() or self.task is not None:
            return
        conn = self.h11
        try:
            while True:
                if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
                    conn.start_next_cycle()
                if self.request is None and conn.our_state is not h11.IDLE and conn.our_state is not h11.DONE:
                    self.close()  # MUST_CLOSE: the client asked for it, or spoke HTTP/1.0
                    return
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    if self not in self.server._waiting:
                        self._wait_after_response()
                    self.transport.resume_reading()
                    return
                if isinstance(event, h11.Request):
                    self.request, self.body, self.body_size = event, [], 0
                    continue
                if isinstance(event, h11.Data) and self.request is not None:
                    self.body_size += len(event.data)
                    if self.body_size > self.server.max_body:
                        self._too_large()
                        return
                    self.body.append(bytes(event.data))
                    continue
                if isinstance(event, h11.EndOfMessage) and self.request is not None:
                    request, body = self.request, b"".join(self.body)
                    self.request, self.body, self.body_size = None, [], 0
                    self._answer(request, body)
                    return
                if isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                    self.close()
                    return
        except h11.RemoteProtocolError as exc:
            self._refuse(exc)

    def _answer(self, request: h11.Request, body: bytes) -> None:
        """Answer ``request``: a route's page that is ready at once is written in this turn
        of the loop; the rest (a page to wait for, the app) in a task. A scrape on a busy
        watcher waited a turn more for the task's first step (docs/performance.md)."""
        self.server._waiting.pop(self, None)
        self._cancel_timer()
        self.transport.pause_reading()  # pipelined requests wait in the kernel, not in memory
        try:
            routed = self.server._route(request)
        except Exception as exc:
            routed = self._failed_page(request, exc)
        if isinstance(routed, Page):
            try:
                rest = self._write(routed, head_only=request.method == b"HEAD")
            except Exception as exc:
                self._failed_answer(request, exc)
                return
            if rest is not None:  # the client reads slower than the page came: the rest in a task
                self.task = self.loop.create_task(self._respond(request, body, None, rest))
            else:  # not _advance() itself: a client's pipelined requests would recurse
                self.loop.call_soon(self._advance)
            return
        self.task = self.loop.create_task(self._respond(request, body, routed))
        if inspect.iscoroutine(routed):  # made here, awaited in the task: closed if it never starts
            self.task.add_done_callback(lambda _: routed.close())

    def _too_large(self) -> None:
        """A request body past ``max_body``: 413, then the rest of the body is read and
        dropped (for at most ``_LINGER`` seconds) until the client closes: closing with
        unread bytes would reset the connection and lose the answer."""
        body = b'{"error":{"status":413,"code":"payload_too_large","message":"the request body is too large"}}\n'
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
            (b"server", _SERVER),
        ]
        with contextlib.suppress(h11.LocalProtocolError):
            response = h11.Response(status_code=413, headers=headers, reason=_reason(413))
            self.transport.write((self.h11.send(response) or b"") + (self.h11.send(h11.Data(data=body)) or b""))
        self.discarding = True
        self.request, self.body, self.body_size = None, [], 0
        if not self.transport.can_write_eof():
            self.close()
            return
        self.transport.write_eof()
        self.server._waiting[self] = None  # evictable while it lingers
        self._deadline(_LINGER, self.abort)

    async def _respond(
        self, request: h11.Request, body: bytes, routed: Awaitable[Page] | None, rest: _Rest | None = None
    ) -> None:
        """Answer in a task: make the page (``routed``: the route's, to await) and send it,
        or send the ``rest`` of one that ``_answer`` began to write."""
        try:
            if rest is None:
                rest = self._write(await self._page(request, body, routed), head_only=request.method == b"HEAD")
            await self._send_rest(rest)
        except _Dropped:
            return
        except Exception as exc:
            self._failed_answer(request, exc)
            return
        finally:
            self.task = None
        self._advance()

    async def _page(self, request: h11.Request, body: bytes, routed: Awaitable[Page] | None) -> Page:
        try:
            peer = self.transport.get_extra_info("peername")
            client = (str(peer[0]), int(peer[1])) if isinstance(peer, tuple) and len(peer) >= 2 else None
            return await self.server._page(request, body, client, routed)
        except Exception as exc:
            return self._failed_page(request, exc)

    def _failed_page(self, request: h11.Request, exc: Exception) -> Page:
        """Making the page failed: logged, and the client gets a 500."""
        self._report(f"the page {request.target.decode('latin-1')} failed", exc)
        return _FAILED

    def _failed_answer(self, request: h11.Request, exc: Exception) -> None:
        """Sending the answer failed half-way: logged, and the connection is dropped."""
        self._report(f"answering {request.target.decode('latin-1')} failed", exc)
        self.abort()

    @staticmethod
    def _head(page: Page, pieces: Sequence[bytes]) -> h11.Response:
        headers = [
            (b"content-type", page.content_type.encode()),
            (b"content-length", str(sum(map(len, pieces))).encode()),
            (b"server", _SERVER),
            *page.headers,
        ]
        return h11.Response(status_code=page.status, headers=headers, reason=_reason(page.status))

    def _write(self, page: Page, head_only: bool) -> _Rest | None:
        """Write the response while the transport takes it without pausing (the socket's
        buffer is not full): ``None`` once it is all written, else what is left to send."""
        pieces = page.pieces()
        self.transport.write(self.h11.send(self._head(page, pieces)) or b"")
        rest: _Rest = iter(() if head_only else batches(pieces, _BATCH))
        for batch in rest:
            self._write_batch(batch)
            if self.paused:
                return rest
        self._end_message()
        return iter(()) if self.paused else None

    async def _send_rest(self, rest: _Rest | None) -> None:
        """Send what ``_write`` left, a batch whenever the client has read the one before."""
        if rest is None:
            return
        await self._drain()
        for batch in rest:
            self._write_batch(batch)
            await self._drain()
        if self.h11.our_state is h11.SEND_BODY:
            self._end_message()
            await self._drain()

    def _write_batch(self, batch: bytes) -> None:
        self.transport.writelines(self.h11.send_with_data_passthrough(h11.Data(data=batch)) or ())

    def _end_message(self) -> None:
        self.transport.write(self.h11.send(h11.EndOfMessage()) or b"")

    def _report(self, message: str, exc: Exception) -> None:
        self.loop.call_exception_handler({"message": message, "exception": exc, "protocol": self})

    async def _drain(self) -> None:
        if not self.paused:
            return
        self.writable = self.loop.create_future()
        try:
            async with asyncio.timeout(self.server.write_timeout):
                await self.writable
        except TimeoutError:
            self.server.requests_timed_out_total += 1
            self.abort()
            raise _Dropped from None
        finally:
            self.writable = None

    def _refuse(self, exc: h11.RemoteProtocolError) -> None:
        if self.h11.our_state is h11.IDLE:
            body = f"bad request: {exc}\n".encode()
            headers = [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
                (b"server", _SERVER),
            ]
            response = h11.Response(
                status_code=exc.error_status_hint, headers=headers, reason=_reason(exc.error_status_hint)
            )
            with contextlib.suppress(h11.LocalProtocolError):
                self.transport.write((self.h11.send(response) or b"") + (self.h11.send(h11.Data(data=body)) or b""))
        self.close()

    # -- endings ---------------------------------------------------------------------------

    def turn_away(self) -> None:
        """Answer 503 before reading anything and close: cheap, and tells a probe why."""
        self.transport.write(_BUSY)
        self.transport.close()
        if self.transport.get_write_buffer_size():
            self.transport.abort()

    def close(self) -> None:
        """Close once what is written has been sent, or abort if the client will not take it."""
        self.server._waiting.pop(self, None)
        self._cancel_timer()
        self.transport.close()
        if self.transport.get_write_buffer_size():
            self._deadline(self.server.write_timeout, self._write_timed_out)
        # Still counted as open until asyncio closes the socket (connection_lost).

    def abort(self) -> None:
        self.server._forget(self)
        self._cancel_timer()
        self.transport.abort()

    def _head_timed_out(self) -> None:
        self.server.requests_timed_out_total += 1
        self.abort()

    def _write_timed_out(self) -> None:
        self.server.requests_timed_out_total += 1
        self.abort()

    def _deadline(self, timeout: float, then: Callable[[], None]) -> None:
        self._cancel_timer()
        self.timer = self.loop.call_later(timeout, then)

    def _cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
