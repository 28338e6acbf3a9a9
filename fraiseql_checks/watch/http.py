"""The watcher's small HTTP server: ``/metrics``, ``/healthz``, ``/readyz``.

It runs on the watcher's event loop. HTTP/1.1 parsing is h11's (the protocol
library under httpx), so keep-alive, pipelining and malformed requests are
handled by code made for it; this module only routes ``GET`` and ``HEAD``.
Other plugins can add pages with ``server.routes[path] = handler``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import http
from collections.abc import Awaitable, Callable, Sequence

import h11

from fraiseql_checks import __version__

_IDLE_TIMEOUT = 60.0
_MAX_REQUEST = 16 * 1024
_BATCH = 1024 * 1024


@dataclasses.dataclass(frozen=True)
class Page:
    status: int
    #: The body, whole or in pieces (sent in batches of about ``_BATCH`` bytes).
    body: bytes | Sequence[bytes]
    content_type: str = "text/plain; charset=utf-8"

    def pieces(self) -> Sequence[bytes]:
        return [self.body] if isinstance(self.body, bytes) else self.body


Handler = Callable[[], Page | Awaitable[Page]]


def _reason(status: int) -> bytes:
    try:
        return http.HTTPStatus(status).phrase.encode()
    except ValueError:
        return b""


class HTTPServer:
    """Serves ``routes`` (path → handler) on one address."""

    def __init__(self) -> None:
        self.routes: dict[str, Handler] = {}
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self.address = ""

    async def start(self, host: str, port: int) -> None:
        """Listen; ``OSError`` when the address is taken or not ours."""
        self._server = await asyncio.start_server(self._connection, host, port, reuse_address=True, limit=_MAX_REQUEST)
        sockname = self._server.sockets[0].getsockname()
        self.address = f"{host}:{sockname[1]}"

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._connections):
                task.cancel()
            await asyncio.gather(*self._connections, return_exceptions=True)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
            self._server = None

    async def _page(self, request: h11.Request) -> Page:
        if request.method not in (b"GET", b"HEAD"):
            return Page(405, b"only GET and HEAD\n")
        path = request.target.split(b"?", 1)[0].decode("latin-1")
        handler = self.routes.get(path)
        if handler is None:
            listing = "".join(f"{p}\n" for p in sorted(self.routes))
            return Page(404, f"not found; this watcher serves:\n{listing}".encode())
        page = handler()
        return page if isinstance(page, Page) else await page

    async def _send_body(self, conn: h11.Connection, writer: asyncio.StreamWriter, pieces: Sequence[bytes]) -> None:
        """Send in batches, letting the loop run between them while the client reads."""
        batch: list[bytes] = []
        size = 0
        for piece in pieces:
            batch.append(piece)
            size += len(piece)
            if size >= _BATCH:
                writer.writelines(conn.send_with_data_passthrough(h11.Data(data=b"".join(batch))) or ())
                batch, size = [], 0
                await writer.drain()
        if batch:
            writer.writelines(conn.send_with_data_passthrough(h11.Data(data=b"".join(batch))) or ())

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=_MAX_REQUEST)
        try:
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    data = await asyncio.wait_for(reader.read(65536), _IDLE_TIMEOUT)
                    conn.receive_data(data)
                    continue
                if isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                    break
                if not isinstance(event, h11.Request):
                    continue
                page = await self._page(event)
                pieces = page.pieces()
                headers = [
                    (b"content-type", page.content_type.encode()),
                    (b"content-length", str(sum(map(len, pieces))).encode()),
                    (b"server", f"fraiseql-check/{__version__}".encode()),
                ]
                response = h11.Response(status_code=page.status, headers=headers, reason=_reason(page.status))
                writer.write(conn.send(response) or b"")
                if event.method != b"HEAD":
                    await self._send_body(conn, writer, pieces)
                writer.write(conn.send(h11.EndOfMessage()) or b"")
                await writer.drain()
                while conn.their_state is h11.SEND_BODY:  # a body we do not read
                    if conn.next_event() is h11.NEED_DATA:
                        conn.receive_data(await asyncio.wait_for(reader.read(65536), _IDLE_TIMEOUT))
                if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
                    conn.start_next_cycle()
                else:
                    break
        except h11.RemoteProtocolError as exc:
            if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                with contextlib.suppress(Exception):
                    body = f"bad request: {exc}\n".encode()
                    response = h11.Response(
                        status_code=exc.error_status_hint,
                        headers=[(b"content-length", str(len(body)).encode()), (b"connection", b"close")],
                    )
                    writer.write((conn.send(response) or b"") + (conn.send(h11.Data(data=body)) or b""))
        except (TimeoutError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._connections.discard(task)
            writer.close()
