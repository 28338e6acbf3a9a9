"""HTTP/1.1 on the wire for the ``http`` fixture: an asyncio protocol and an incremental parser.

httpx builds the requests and reads the responses (checks write httpx); this module
only moves bytes: it writes a request's head and body on a keep-alive connection and
parses the answer as RFC 9112 frames it (``Content-Length``, chunked, or until the
server closes; no body for ``HEAD``, 1xx, 204 and 304). It is what aiohttp did under
the client before, at a third of its CPU per request and without its import (about
0.1 s of every start: aiohttp builds two TLS contexts when imported).

The parser works on whole buffers with ``bytes.find`` and slicing (C speed); a
response that arrives in one packet, as most checks' answers do, is parsed in one
call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from fraiseql_checks.timing import own_timeout

#: Response head (status line and header lines) up to this size: long
#: ``Content-Security-Policy`` and cookie headers exceed 8 KiB; h11 allowed 16 KiB.
MAX_HEAD_BYTES = 65536
#: Chunk-size lines and trailer lines up to this size.
MAX_LINE_BYTES = 8192

#: A streamed body's bytes held before the connection stops reading until the check reads them.
_MAX_PENDING = 1 << 20
_NO_BODY_STATUS = frozenset((204, 304))


class ProtocolError(Exception):
    """The server broke HTTP/1.1's framing (an unreadable status line, a bad chunk size, ...)."""


@dataclass
class Head:
    """A response's status line and headers, as sent (names keep their case)."""

    status: int
    reason: bytes
    version: bytes
    headers: list[tuple[bytes, bytes]]
    #: Whether the connection may carry another request after this answer.
    keep_alive: bool = True


@dataclass
class Parser:
    """Parses one response after another on a connection; feed it bytes as they come.

    ``feed`` returns as soon as something new is known: ``head`` is set once the
    status line and headers are in, ``body`` collects the body's bytes (taken by
    the reader with ``take``), and ``done`` is set at the end of the body. With
    ``until_close`` framing, ``closed()`` ends the body.
    """

    #: Set before the response arrives: a ``HEAD`` request's answer has no body.
    head_request: bool = False
    head: Head | None = None
    body: list[bytes] = field(default_factory=list)
    #: How many bytes ``body`` holds.
    pending: int = 0
    done: bool = False
    _buffer: bytes = b""
    _framing: str = ""  # "length", "chunked", "close", or "" (not known yet)
    _remaining: int = 0  # body bytes left ("length"), or of the current chunk ("chunked")
    _chunk_state: str = "size"  # "size", "data", "data-end", "trailers"

    def feed(self, data: bytes) -> None:
        buffer = self._buffer + data if self._buffer else data
        self._buffer = b""
        while buffer and not self.done:
            if self.head is None:
                buffer = self._parse_head(buffer)  # b"" when the head is not all in yet
            elif self._framing == "length":
                if len(buffer) < self._remaining:
                    self._add(buffer)
                    self._remaining -= len(buffer)
                    buffer = b""
                else:
                    self._add(buffer[: self._remaining])
                    buffer = buffer[self._remaining :]
                    self._remaining = 0
                    self.done = True
            elif self._framing == "close":
                self._add(buffer)
                buffer = b""
            else:
                buffer = self._parse_chunked(buffer)
                if not buffer:
                    break
        if buffer and self.done and self.head is not None:
            # Bytes after the answer, which nothing asked for: the answer stands, the
            # connection is not used again.
            self.head.keep_alive = False

    def _add(self, data: bytes) -> None:
        if data:
            self.body.append(data)
            self.pending += len(data)

    def closed(self) -> None:
        """The server closed the connection: the end of an ``until close`` body, an error otherwise."""
        if self.done:
            return
        if self.head is not None and self._framing == "close":
            self.done = True
            return
        if self.head is None:
            raise ProtocolError("the server closed the connection without answering")
        raise ProtocolError("the server closed the connection before the end of the body")

    def take(self) -> bytes:
        """The body's bytes received since the last call."""
        if not self.body:
            return b""
        parts, self.body, self.pending = self.body, [], 0
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _parse_head(self, buffer: bytes) -> bytes:
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            self._buffer = buffer
            if len(buffer) > MAX_HEAD_BYTES:
                raise ProtocolError(f"the answer's status line and headers are longer than {MAX_HEAD_BYTES} bytes")
            return b""
        if end > MAX_HEAD_BYTES:
            raise ProtocolError(f"the answer's status line and headers are longer than {MAX_HEAD_BYTES} bytes")
        lines = buffer[:end].split(b"\r\n")
        rest = buffer[end + 4 :]
        version, _, status_reason = lines[0].partition(b" ")
        code, _, reason = status_reason.partition(b" ")
        if not version.startswith(b"HTTP/1.") or len(code) != 3 or not code.isdigit():
            raise ProtocolError(f"not an HTTP/1 status line: {lines[0][:80]!r}")
        status = int(code)
        headers: list[tuple[bytes, bytes]] = []
        for line in lines[1:]:
            if line[:1] in (b" ", b"\t"):  # obs-fold: a continuation of the previous value
                if not headers:
                    raise ProtocolError("the answer's first header line is a continuation")
                name, value = headers[-1]
                headers[-1] = (name, value + b" " + line.strip(b" \t"))
                continue
            name, colon, value = line.partition(b":")
            if not colon or not name or name != name.strip(b" \t"):
                raise ProtocolError(f"not a header line: {line[:80]!r}")
            headers.append((name, value.strip(b" \t")))
        if 100 <= status < 200 and status != 101:  # interim (100 Continue, 103 Early Hints): the answer follows
            return rest
        self.head = Head(status, reason, version, headers)
        self._frame(self.head)
        return rest

    def _frame(self, head: Head) -> None:
        """How the body is delimited (RFC 9112, section 6.3), and whether the connection stays open."""
        length: bytes | None = None
        chunked = False
        transfer_encoding = False
        connection = b""
        for name, value in head.headers:
            lowered = name.lower()
            if lowered == b"content-length":
                if length is not None and value != length:
                    raise ProtocolError("the answer has two different Content-Length headers")
                length = value
            elif lowered == b"transfer-encoding":
                codings = [coding.strip().lower() for coding in value.split(b",") if coding.strip()]
                if codings and codings[-1] == b"chunked" and any(c != b"chunked" for c in codings):
                    # gzip, chunked: the body would reach httpx still gzipped, which it does not undo
                    raise ProtocolError(f"a transfer coding this client does not decode: {value[:40]!r}")
                transfer_encoding = True
                chunked = bool(codings) and codings[-1] == b"chunked"
            elif lowered == b"connection":
                connection += value.lower()
        head.keep_alive = head.version == b"HTTP/1.1" and b"close" not in connection and head.status != 101
        if self.head_request or head.status in _NO_BODY_STATUS or head.status == 101:
            self._framing, self.done = "length", True
        elif transfer_encoding:
            self._framing = "chunked" if chunked else "close"
            if length is not None:  # both: RFC 9112 6.1, answer as chunked, then close
                head.keep_alive = False
        elif length is not None:
            if not length.isdigit():
                raise ProtocolError(f"not a Content-Length: {length[:40]!r}")
            self._framing, self._remaining = "length", int(length)
            self.done = self._remaining == 0
        else:
            self._framing = "close"
        if self._framing == "close":
            head.keep_alive = False

    def _parse_chunked(self, buffer: bytes) -> bytes:
        """Consume what ``buffer`` holds of a chunked body; return the bytes left unread."""
        while buffer:
            state = self._chunk_state
            if state == "data":
                if len(buffer) < self._remaining:
                    self._add(buffer)
                    self._remaining -= len(buffer)
                    return b""
                self._add(buffer[: self._remaining])
                buffer = buffer[self._remaining :]
                self._chunk_state = "data-end"
                continue
            end = buffer.find(b"\r\n")
            if end < 0:
                if len(buffer) > MAX_LINE_BYTES:
                    raise ProtocolError("a chunk-size or trailer line is too long")
                self._buffer = buffer
                return b""
            line, buffer = buffer[:end], buffer[end + 2 :]
            if state == "data-end":
                if line:
                    raise ProtocolError("a chunk is longer than its size")
                self._chunk_state = "size"
            elif state == "size":
                size = line.split(b";", 1)[0].strip(b" \t")
                if not size or size.strip(b"0123456789abcdefABCDEF") or len(size) > 16:
                    raise ProtocolError(f"not a chunk size: {line[:40]!r}")
                self._remaining = int(size, 16)
                self._chunk_state = "trailers" if self._remaining == 0 else "data"
            elif not line:  # the empty line after the trailers
                self.done = True
                return buffer
        return buffer


class Connection(asyncio.Protocol):
    """One keep-alive connection: writes requests and parses the answers as bytes arrive.

    ``wait`` returns when the parser has something new (the head, body bytes, the
    end) or the connection failed. A read timeout is one timer per wait, re-armed
    only if bytes came in the meantime (not a timer per packet).
    """

    def __init__(self, key: tuple[str, str, int, str | None]) -> None:
        self.key = key
        self.transport: asyncio.Transport | None = None
        self.parser = Parser()
        self.closed = False
        self.error: BaseException | None = None
        self.idle_since = 0.0
        self.reused = False
        self._waiter: asyncio.Future[None] | None = None
        self._writable: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._last_data = 0.0
        #: The server does not take our bytes as fast as they are written (``drain`` waits).
        self.paused_writing = False
        #: Reading stopped until the check reads the body's bytes held (``resume`` reads again).
        self.paused_reading = False
        self._loop = asyncio.get_running_loop()

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.parser.done:  # bytes on an idle connection, which nothing asked for: not used again
            self.close()
            return
        self._last_data = self._loop.time()
        try:
            self.parser.feed(data)
        except ProtocolError as exc:
            self._fail(exc)
            return
        if self.parser.pending > _MAX_PENDING and not self.paused_reading and self.transport is not None:
            self.paused_reading = True  # a streamed body nobody reads yet: stop reading until it is
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        try:
            self.parser.closed()
        except ProtocolError as exc:
            self._fail(exc)
        self.closed = True
        self._wake()
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.error is None and not self.parser.done:
            if exc is not None:  # a reset is never the end of a body, even one framed by the close
                self.error = exc
            else:
                try:
                    self.parser.closed()  # the end of a body framed by the connection's end
                except ProtocolError as error:
                    self.error = error
        self._wake()
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)  # drain() raises what closed it

    def pause_writing(self) -> None:
        self.paused_writing = True
        self._writable = self._loop.create_future()

    def resume_writing(self) -> None:
        self.paused_writing = False
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)
        self._writable = None

    # used by the transport

    def start(self, head_request: bool) -> None:
        self.parser = Parser(head_request=head_request)

    def write(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    async def drain(self, timeout: float | None, on_timeout: Callable[[], BaseException]) -> None:
        """Wait while the server does not take the bytes written (at most ``timeout``)."""
        writable = self._writable
        if writable is not None:
            try:
                async with own_timeout(timeout):  # a neighbour holding the loop does not time it out
                    await writable
            except TimeoutError:
                self.close()
                raise on_timeout() from None
        if self.error is not None:
            raise self.error
        if self.closed:
            raise ConnectionResetError("the connection was closed while the request was sent")

    def resume(self) -> None:
        """Read again (a body left unread paused it): an idle connection must see the server close it."""
        if self.paused_reading and self.transport is not None:
            self.paused_reading = False
            self.transport.resume_reading()

    async def wait(self, timeout: float | None, on_timeout: Callable[[], BaseException]) -> None:
        """Wait until the parser has moved on; raise what broke the exchange, or ``on_timeout()``."""
        if self.error is not None:
            raise self.error
        if self.closed:  # closed on our side (the transport closing) before the answer came
            raise ConnectionResetError("the connection was closed before the answer came")
        if self.paused_reading:
            self.resume()
        waiter = self._waiter = self._loop.create_future()
        if timeout is not None:
            started = self._last_data = self._loop.time()
            self._timer = self._loop.call_at(started + timeout, self._check_timeout, waiter, timeout)
        try:
            await waiter
        finally:
            self._waiter = None
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        if self.error is not None:
            if isinstance(self.error, TimeoutError):
                self.close()
                raise on_timeout()
            raise self.error

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def _check_timeout(self, waiter: asyncio.Future[None], timeout: float) -> None:
        if waiter.done():
            return
        due = self._last_data + timeout
        if due > self._loop.time():  # bytes came since: wait the rest of the time from then
            self._timer = self._loop.call_at(due, self._check_timeout, waiter, timeout)
            return
        self.error = TimeoutError()
        waiter.set_result(None)

    def _fail(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc
        self.close()
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
