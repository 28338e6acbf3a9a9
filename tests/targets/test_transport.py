"""The ``http`` fixture's transport (aiohttp under httpx), against real local servers.

Each behaviour the httpcore transport had is checked on the wire: what the server
received (raw bytes), how many connections it saw, and what the check sees.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import re
import socket
import ssl
import struct
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from fraiseql_checks.errors import TargetError
from fraiseql_checks.targets import transport
from fraiseql_checks.targets.http import HTTPClient
from fraiseql_checks.targets.transport import HTTPTransport
from tests.support.checkdir import CheckDir
from tests.support.neighbours import outcomes_of, write_neighbours
from tests.support.services import free_port, self_signed_certificate, taking_no_connection

T = TypeVar("T")


@dataclass
class Received:
    """One request as the server read it off the socket."""

    head: bytes
    body: bytes
    connection: int

    @property
    def header_lines(self) -> list[str]:
        return self.head.decode("latin-1").split("\r\n")[1:]

    def header(self, name: str) -> str | None:
        for line in self.header_lines:
            key, _, value = line.partition(":")
            if key.lower() == name.lower():
                return value.strip()
        return None


@dataclass
class RawServer:
    """HTTP/1.1 on loopback, written against the RFC with no HTTP library, that records
    every request's raw bytes and the connection it came on."""

    tls: ssl.SSLContext | None = None
    port: int = 0
    received: list[Received] = field(default_factory=list)
    connections: int = 0
    in_flight: int = 0
    most_in_flight: int = 0
    release: asyncio.Event | None = None
    loop: asyncio.AbstractEventLoop | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        connection = self.connections
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n"))[:-4]
                request = Received(head, b"", connection)
                length = request.header("content-length")
                if length is not None:
                    request.body = await reader.readexactly(int(length))
                elif (request.header("transfer-encoding") or "").lower() == "chunked":
                    while size := int((await reader.readuntil(b"\r\n"))[:-2], 16):
                        request.body += await reader.readexactly(size)
                        await reader.readexactly(2)
                    await reader.readexactly(2)
                self.received.append(request)
                if not await self.answer(request, writer):
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            writer.close()

    async def answer(self, request: Received, writer: asyncio.StreamWriter) -> bool:
        """Write the answer; ``False`` to close the connection."""
        path = request.head.split(b" ")[1].decode()
        if path == "/echo":
            body = json.dumps({"head": request.head.decode("latin-1"), "body": request.body.decode("latin-1")})
            answer = respond(200, body.encode(), b"Content-Type: application/json\r\nX-Mixed-Case: Yes\r\n")
            if request.head.startswith(b"HEAD "):  # the head of the answer a GET would get, no body
                answer = answer[: answer.index(b"\r\n\r\n") + 4]
            writer.write(answer)
        elif path == "/set-cookie":
            writer.write(respond(200, b"", b"Set-Cookie: session=abc; Path=/\r\n"))
        elif path == "/redirect":
            writer.write(respond(302, b"", b"Location: /echo\r\n"))
        elif path == "/gzip":
            writer.write(respond(200, gzip.compress(b"unzipped " * 100), b"Content-Encoding: gzip\r\n"))
        elif path == "/chunked":
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            for part in (b"one,", b"two,", b"three"):
                writer.write(b"%x\r\n%s\r\n" % (len(part), part))
                await writer.drain()
            writer.write(b"0\r\n\r\n")
        elif path == "/silent":
            await asyncio.sleep(30)
        elif path == "/hang-up":
            return False
        elif path == "/truncated":  # says 10 bytes, sends 3, hangs up
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
            await writer.drain()
            return False
        elif path == "/stall":  # says 10 bytes, sends 3, then nothing
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
            await writer.drain()
            await asyncio.sleep(30)
        elif path == "/then-close":  # a keep-alive answer, then the server closes the connection
            writer.write(respond(200, b"closing"))
            await writer.drain()
            return False
        elif path == "/slow-body":  # the body in parts, each within the read timeout, the whole beyond it
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")
            for part in b"slow!":
                await writer.drain()
                await asyncio.sleep(0.25)
                writer.write(bytes([part]))
        elif path == "/hold":
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            assert self.release is not None
            await self.release.wait()
            self.in_flight -= 1
            writer.write(respond(200, b"held"))
        else:
            writer.write(respond(404, b"no such path"))
        await writer.drain()
        return True


def respond(status: int, body: bytes, headers: bytes = b"") -> bytes:
    reason = {200: b"OK", 302: b"Found", 404: b"Not Found"}[status]
    return b"HTTP/1.1 %d %s\r\nContent-Length: %d\r\n%s\r\n%s" % (status, reason, len(body), headers, body)


@pytest.fixture
def server() -> Iterator[RawServer]:
    with serving(RawServer()) as running:
        yield running


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, and its key."""
    return self_signed_certificate(tmp_path)


@pytest.fixture
def tls_server(certificate: tuple[Path, Path]) -> Iterator[RawServer]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    with serving(RawServer(tls=context)) as running:
        yield running


class serving:
    """Runs a ``RawServer`` on its own loop in a thread."""

    def __init__(self, server: RawServer) -> None:
        self.server = server
        self.ready = threading.Event()
        self.thread = threading.Thread(target=asyncio.run, args=(self.serve(),), daemon=True)
        self.stop: asyncio.Event | None = None

    async def serve(self) -> None:
        self.server.loop = asyncio.get_running_loop()
        self.server.release, self.stop = asyncio.Event(), asyncio.Event()
        listener = await asyncio.start_server(self.server.handle, "127.0.0.1", 0, ssl=self.server.tls)
        self.server.port = listener.sockets[0].getsockname()[1]
        self.ready.set()
        await self.stop.wait()
        listener.close()
        handlers = asyncio.all_tasks() - {asyncio.current_task()}
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)

    def __enter__(self) -> RawServer:
        self.thread.start()
        assert self.ready.wait(10)
        return self.server

    def __exit__(self, *exc: object) -> None:
        assert self.server.loop is not None and self.stop is not None
        self.server.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(10)


def run(scenario: Callable[[HTTPClient], Awaitable[T]], **options: Any) -> T:
    async def main() -> T:
        async with HTTPClient(**options) as client:
            return await scenario(client)

    return asyncio.run(main())


def failure(scenario: Callable[[HTTPClient], Awaitable[object]], **options: Any) -> TargetError:
    with pytest.raises(TargetError) as caught:
        run(scenario, **options)
    return caught.value


# ---- connection failures ----------------------------------------------------------


def test_connection_refused_is_unreachable() -> None:
    port = free_port()
    error = failure(lambda http: http.get(f"http://127.0.0.1:{port}/health"))
    assert str(error) == f"GET http://127.0.0.1:{port}/health: connection refused"
    assert error.unreachable is True
    assert isinstance(error.__cause__, httpx.ConnectError)


def test_connection_refused_on_every_address_of_a_name() -> None:
    """``localhost`` may be ::1 and 127.0.0.1: both refused is still "connection refused"."""
    port = free_port()
    error = failure(lambda http: http.get(f"http://localhost:{port}/"))
    assert str(error) == f"GET http://localhost:{port}/: connection refused"


def test_tls_certificate_not_trusted(tls_server: RawServer) -> None:
    error = failure(lambda http: http.get(f"{tls_server.url}/echo"))
    assert str(error).startswith(f"GET {tls_server.url}/echo: TLS failure: certificate verify failed: self")
    assert error.unreachable is True
    assert tls_server.received == []


def test_tls_with_the_certificate_trusted(tls_server: RawServer, certificate: tuple[Path, Path]) -> None:
    trusting = ssl.create_default_context(cafile=str(certificate[0]))
    response = run(lambda http: http.get(f"{tls_server.url}/echo"), verify=trusting)
    assert response.status_code == 200
    assert response.json()["head"].startswith("GET /echo HTTP/1.1")
    unverified = run(lambda http: http.get(f"{tls_server.url}/echo"), verify=False)
    assert unverified.status_code == 200


def test_an_address_that_takes_no_connection_times_out_connecting() -> None:
    """The connect waits, by itself, and times out (nobody else holds the loop)."""
    with taking_no_connection() as port:
        error = failure(lambda http: http.get(f"http://127.0.0.1:{port}/"), timeout=0.3)
    assert str(error) == f"GET http://127.0.0.1:{port}/: timed out connecting after 0.3s"
    assert isinstance(error.__cause__, httpx.ConnectTimeout)


def test_read_timeout_is_not_unreachable(server: RawServer) -> None:
    error = failure(lambda http: http.get(f"{server.url}/silent"), timeout=0.3)
    assert str(error) == f"GET {server.url}/silent: timed out waiting for the answer after 0.3s"
    assert error.unreachable is False
    assert isinstance(error.__cause__, httpx.ReadTimeout)


def test_server_hangs_up_without_answering(server: RawServer) -> None:
    error = failure(lambda http: http.get(f"{server.url}/hang-up"))
    assert str(error).startswith(f"GET {server.url}/hang-up: the server broke the HTTP exchange: ")
    assert isinstance(error.__cause__, httpx.RemoteProtocolError)


# ---- what goes on the wire ----------------------------------------------------------


def test_header_names_keep_their_case(server: RawServer) -> None:
    response = run(lambda http: http.get(f"{server.url}/echo", headers={"X-Custom-Header": "One", "x-lower": "two"}))
    (request,) = server.received
    assert "X-Custom-Header: One" in request.header_lines
    assert "x-lower: two" in request.header_lines
    assert request.header("user-agent").startswith("fraiseql-checks/")  # type: ignore[union-attr]
    assert response.headers["x-mixed-case"] == "Yes"
    assert (b"X-Mixed-Case", b"Yes") in response.headers.raw


def test_no_headers_added_beyond_httpx_own(server: RawServer) -> None:
    """aiohttp adds Accept, User-Agent and Content-Type of its own; the client sends httpx's."""

    async def scenario(http: HTTPClient) -> None:
        del http.headers["User-Agent"]
        await http.post(f"{server.url}/echo", content=b"raw bytes")

    run(scenario)
    (request,) = server.received
    names = sorted(line.split(":")[0].lower() for line in request.header_lines)
    assert names == ["accept", "accept-encoding", "connection", "content-length", "host"]
    assert request.header("accept") == "*/*"  # httpx's default, not a second one


def test_request_bodies(server: RawServer) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for part in (b"streamed ", b"in ", b"parts"):
            yield part

    async def scenario(http: HTTPClient) -> None:
        await http.post(f"{server.url}/echo", content=b"exact bytes")
        await http.post(f"{server.url}/echo", json={"query": "{ ok }"})
        await http.put(f"{server.url}/echo", content=chunks())
        await http.post(f"{server.url}/echo", data={"a": "1", "b": "two words"})

    run(scenario)
    raw, as_json, streamed, form = server.received
    assert (raw.body, raw.header("content-length")) == (b"exact bytes", "11")
    assert json.loads(as_json.body) == {"query": "{ ok }"}
    assert as_json.header("content-type") == "application/json"
    assert streamed.head.startswith(b"PUT /echo HTTP/1.1")
    assert (streamed.body, streamed.header("transfer-encoding")) == (b"streamed in parts", "chunked")
    assert form.body == b"a=1&b=two+words"
    assert form.header("content-type") == "application/x-www-form-urlencoded"


def test_keep_alive_reuses_one_connection(server: RawServer) -> None:
    async def scenario(http: HTTPClient) -> None:
        for _ in range(5):
            response = await http.get(f"{server.url}/echo")
            assert response.status_code == 200

    run(scenario)
    assert [r.connection for r in server.received] == [1] * 5
    assert server.connections == 1


async def held_then_released(http: HTTPClient, server: RawServer, requests: int, in_flight: int) -> list[int]:
    """``requests`` GETs of ``/hold`` at once; the server answers them once ``in_flight`` of
    them are in. Their status codes."""

    async def release_when_in() -> None:
        while server.in_flight < in_flight:
            await asyncio.sleep(0.01)
        assert server.loop is not None and server.release is not None
        server.loop.call_soon_threadsafe(server.release.set)

    releaser = asyncio.create_task(asyncio.wait_for(release_when_in(), 20))
    responses = await asyncio.gather(*(http.get(f"{server.url}/hold") for _ in range(requests)))
    await releaser
    return [r.status_code for r in responses]


def test_connections_cap_requests_in_flight(server: RawServer) -> None:
    assert run(lambda http: held_then_released(http, server, 20, 6), connections=6) == [200] * 20
    assert server.most_in_flight == 6
    assert server.connections == 6


# ---- what the check reads -----------------------------------------------------------


def test_redirects_followed_only_when_asked(server: RawServer) -> None:
    async def scenario(http: HTTPClient) -> tuple[httpx.Response, httpx.Response]:
        return (
            await http.get(f"{server.url}/redirect"),
            await http.get(f"{server.url}/redirect", follow_redirects=True),
        )

    unfollowed, followed = run(scenario)
    assert unfollowed.status_code == 302
    assert unfollowed.next_request is not None and unfollowed.next_request.url.path == "/echo"
    assert followed.status_code == 200
    assert [r.status_code for r in followed.history] == [302]
    assert followed.json()["head"].startswith("GET /echo HTTP/1.1")


def test_streamed_response_and_aread(server: RawServer) -> None:
    async def scenario(http: HTTPClient) -> tuple[bytes, bytes, str]:
        async with http.stream("GET", f"{server.url}/chunked") as response:
            streamed = b"".join([chunk async for chunk in response.aiter_bytes()])
        async with http.stream("GET", f"{server.url}/chunked") as response:
            read = await response.aread()
        gzipped = await http.get(f"{server.url}/gzip")
        return streamed, read, gzipped.text

    streamed, read, unzipped = run(scenario)
    assert streamed == read == b"one,two,three"
    assert unzipped == "unzipped " * 100
    assert server.connections == 1  # each streamed response gave its connection back


def test_cookies_set_by_an_answer_are_sent_back(server: RawServer) -> None:
    async def scenario(http: HTTPClient) -> str:
        await http.get(f"{server.url}/echo")
        await http.get(f"{server.url}/set-cookie")
        await http.get(f"{server.url}/echo")
        return str(http.cookies["session"])

    assert run(scenario) == "abc"
    before, _, after = server.received
    assert before.header("cookie") is None
    assert after.header("cookie") == "session=abc"


def test_status_reason_and_version(server: RawServer) -> None:
    response = run(lambda http: http.get(f"{server.url}/missing"))
    assert (response.status_code, response.reason_phrase, response.http_version) == (404, "Not Found", "HTTP/1.1")
    with pytest.raises(httpx.HTTPStatusError):
        response.raise_for_status()
    assert response.text == "no such path"


def test_connections_must_be_positive() -> None:
    with pytest.raises(ValueError, match="connections must be at least 1, not 0"):
        HTTPTransport(connections=0)


# ---- the fixture -------------------------------------------------------------------------


def test_fixture_sizes_its_pool_from_the_concurrency(checkdir: CheckDir) -> None:
    checkdir.write(
        "check_pool.py",
        """
        async def check_connections(http):
            print("connections", http.connections)
        """,
    )
    for args, expected in ((["--concurrency", "400"], 400), (["--concurrency", "3"], 100), ([], 100)):
        result, report = checkdir.run_json("check_pool.py", "-s", *args)
        assert [r["outcome"] for r in report["results"]] == ["passed"], result.stdout
        assert f"connections {expected}" in result.stdout


# ---- the client's short path (no auth, redirects not followed, no hooks of the caller's) ----


def test_the_short_path_sends_and_reads_what_httpx_own_path_does(server: RawServer) -> None:
    """A response hook of the caller's sends through httpx's whole ``send``; without one the
    client takes its short path. Both must put the same bytes on the wire and hand the
    check the same response."""

    async def noop(response: httpx.Response) -> None:
        pass

    async def scenario(http: HTTPClient) -> list[tuple[Any, ...]]:
        seen = []
        for method, path, options in (
            ("GET", "/echo", {}),
            ("GET", "/echo?q=1", {"headers": {"X-Extra": "one", "accept": "application/json"}}),
            ("DELETE", "/echo", {"timeout": 2.0}),
            ("POST", "/echo", {}),
            ("GET", "/redirect", {}),
            ("GET", "/gzip", {}),
            ("GET", "/chunked", {}),
            ("GET", "/missing", {}),
        ):
            response = await http.request(method, f"{server.url}{path}", **options)
            request = response.request
            seen.append(
                (
                    method,
                    path,
                    request.headers.raw,
                    request.extensions,
                    request.content,
                    response.status_code,
                    response.reason_phrase,
                    response.http_version,
                    [(k, v) for k, v in response.headers.raw if k.lower() != b"date"],
                    response.content,
                    response.is_closed,
                    response.elapsed.total_seconds() > 0,
                    response.next_request.url if response.next_request else None,
                    response.history,
                )
            )
        return seen

    short = run(scenario)
    short_wire = [r.head for r in server.received]
    server.received.clear()
    whole = run(scenario, event_hooks={"response": [noop]})
    assert whole == short
    assert [r.head for r in server.received] == short_wire
    assert short[4][12] == httpx.URL(f"{server.url}/echo")  # a redirect not followed names the next request


def test_requests_are_built_as_httpx_builds_them() -> None:
    ours = HTTPClient(timeout=5.0)
    plain = httpx.AsyncClient(headers={"User-Agent": ours.headers["User-Agent"]}, timeout=5.0)
    for url in ("http://127.0.0.1:8080/a?x=1", "https://example.com:443/p", "http://[::1]:81/", "http://h/"):
        for method in ("GET", "delete", "POST", "head"):
            for options in ({}, {"headers": {"X-A": "b", "accept": "j", "Host": "other"}}, {"timeout": 2}):
                a, b = ours.build_request(method, url, **options), plain.build_request(method, url, **options)
                assert (a.method, a.url, a.headers.raw, a.extensions, a.content) == (
                    b.method,
                    b.url,
                    b.headers.raw,
                    b.extensions,
                    b.content,
                ), (method, url, options)


def test_auth_hooks_and_followed_redirects_take_httpx_own_path(server: RawServer) -> None:
    sent: list[str] = []

    async def hook(request: httpx.Request) -> None:
        sent.append(str(request.url))

    async def scenario(http: HTTPClient) -> httpx.Response:
        await http.get(f"{server.url}/echo", auth=("user", "secret"))
        await http.get(f"http://user:pw@127.0.0.1:{server.port}/echo")
        return await http.get(f"{server.url}/redirect", follow_redirects=True)

    followed = run(scenario, event_hooks={"request": [hook]})
    basic, in_url, redirected, target = server.received
    assert redirected.head.startswith(b"GET /redirect ") and target.head.startswith(b"GET /echo ")
    assert basic.header("authorization") == "Basic dXNlcjpzZWNyZXQ="
    assert in_url.header("authorization") == "Basic dXNlcjpwdw=="
    assert followed.status_code == 200 and [r.status_code for r in followed.history] == [302]
    assert len(sent) == 4  # the caller's hook saw every request, the redirect's too


def test_a_closed_client_refuses_to_send(server: RawServer) -> None:
    async def scenario(http: HTTPClient) -> None:
        await http.get(f"{server.url}/echo")
        await http.aclose()
        await http.get(f"{server.url}/echo")

    with pytest.raises(RuntimeError, match="client has been closed"):
        run(scenario)


def test_a_streamed_response_has_its_elapsed_once_closed(server: RawServer) -> None:
    async def scenario(http: HTTPClient) -> float:
        async with http.stream("GET", f"{server.url}/chunked") as response:
            with pytest.raises(RuntimeError, match="may only be accessed after"):
                response.elapsed  # noqa: B018 (httpx knows it once the body is closed)
            await response.aread()
        return response.elapsed.total_seconds()

    assert run(scenario) > 0


# ---- the connections under the client ---------------------------------------------------


def test_an_answer_cut_short_is_a_broken_exchange(server: RawServer) -> None:
    error = failure(lambda http: http.get(f"{server.url}/truncated"))
    assert str(error) == (
        f"GET {server.url}/truncated: the server broke the HTTP exchange: "
        "the server closed the connection before the end of the body"
    )
    assert isinstance(error.__cause__, httpx.RemoteProtocolError)


def test_a_body_that_stops_coming_times_out_and_one_that_trickles_does_not(server: RawServer) -> None:
    error = failure(lambda http: http.get(f"{server.url}/stall"), timeout=0.3)
    assert str(error) == f"GET {server.url}/stall: timed out waiting for the answer after 0.3s"
    # each byte 0.25 s after the one before it (a quarter of the timeout: room for a busy
    # machine), the whole body after 1.25 s, more than the timeout
    assert run(lambda http: http.get(f"{server.url}/slow-body"), timeout=1.0).content == b"slow!"


def test_a_connection_the_server_closed_is_not_used_again(server: RawServer) -> None:
    async def scenario(http: HTTPClient) -> list[bytes]:
        first = await http.get(f"{server.url}/then-close")
        await asyncio.sleep(0.05)
        return [first.content, (await http.get(f"{server.url}/echo")).json()["head"][:9].encode()]

    assert run(scenario) == [b"closing", b"GET /echo"]
    assert server.connections == 2


def test_a_head_request_reads_no_body(server: RawServer) -> None:
    async def scenario(http: HTTPClient) -> tuple[int, str, bytes, int]:
        head = await http.head(f"{server.url}/echo")
        after = await http.get(f"{server.url}/echo")  # the same connection, in step
        return head.status_code, head.headers["content-length"], head.content, after.status_code

    status, length, body, after = run(scenario)
    assert (status, body, after) == (200, b"", 200) and int(length) > 0
    assert server.connections == 1


def test_one_connection_serves_two_hosts_in_turn_and_a_cancelled_request_frees_it(server: RawServer) -> None:
    async def scenario(http: HTTPClient) -> list[int]:
        codes = [(await http.get(f"http://127.0.0.1:{server.port}/echo")).status_code]
        codes.append((await http.get(f"http://localhost:{server.port}/echo")).status_code)
        silent = asyncio.create_task(http.get(f"{server.url}/silent"))
        while not any(r.head.startswith(b"GET /silent") for r in server.received):
            await asyncio.sleep(0.01)
        silent.cancel()
        with pytest.raises(asyncio.CancelledError):
            await silent
        codes.append((await asyncio.wait_for(http.get(f"{server.url}/echo"), 10)).status_code)
        return codes

    assert run(scenario, connections=1) == [200, 200, 200]


def test_a_large_streamed_upload_and_download(server: RawServer) -> None:
    big = b"x" * (3 << 20)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(big), 65536):
            yield big[start : start + 65536]

    async def scenario(http: HTTPClient) -> int:
        response = await http.post(f"{server.url}/echo", content=chunks())
        return len(response.json()["body"])

    assert run(scenario) == len(big)


def test_closing_the_client_ends_the_requests_in_flight(server: RawServer) -> None:
    async def scenario(http: HTTPClient) -> BaseException:
        silent = asyncio.create_task(http.get(f"{server.url}/silent"))
        while not any(r.head.startswith(b"GET /silent") for r in server.received):
            await asyncio.sleep(0.01)
        await http.aclose()
        try:
            await asyncio.wait_for(silent, 5)  # not the 30 s the server stays silent, nor the read timeout
        except TargetError as error:
            return error
        raise AssertionError("the request in flight did not fail")

    error = run(scenario, timeout=20)
    assert str(error).startswith(f"GET {server.url}/silent: ")


def test_requests_past_the_connections_opening_at_once_open_theirs_in_turn(
    server: RawServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With 2 connections opened at a time, 30 requests the server holds all get a
    connection of their own in the end (each opening lets the next in line open one)."""
    monkeypatch.setattr(transport, "CONNECTING_AT_ONCE", 2)

    assert run(lambda http: held_then_released(http, server, 30, 30), connections=100) == [200] * 30
    assert server.most_in_flight == 30 and server.connections == 30


@dataclass
class HandlerServer(RawServer):
    """A ``RawServer`` whose connections are handled by a test's own ``handler``."""

    handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]] | None = None
    methods: list[bytes] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self.handler is not None
        await self.handler(reader, writer)


def serving_handler(handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]) -> serving:
    return serving(HandlerServer(handler=handler))


def test_a_request_cancelled_while_it_waits_for_a_connection_is_cancelled(server: RawServer) -> None:
    async def scenario(http: HTTPClient) -> int:
        holding = asyncio.create_task(http.get(f"{server.url}/hold"))
        while server.in_flight < 1:
            await asyncio.sleep(0.01)
        waiting = asyncio.create_task(http.get(f"{server.url}/echo"))  # the only connection is taken
        await asyncio.sleep(0.05)
        holding.cancel()
        waiting.cancel()  # both in the same turn: the waiter is woken and cancelled at once
        for task in (holding, waiting):
            with pytest.raises(asyncio.CancelledError):
                await task
        assert server.loop is not None and server.release is not None
        server.loop.call_soon_threadsafe(server.release.set)
        return (await asyncio.wait_for(http.get(f"{server.url}/echo"), 10)).status_code  # no slot was lost

    assert run(scenario, connections=1) == 200


def test_a_get_is_sent_again_on_a_new_connection_and_a_post_is_not() -> None:
    async def answer_once_then_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            for answered in (True, False):
                head = await reader.readuntil(b"\r\n\r\n")
                length = re.search(rb"Content-Length: (\d+)", head)
                await reader.readexactly(int(length[1]) if length else 0)
                handled.methods.append(head.split(b" ")[0])
                if answered:
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                    await writer.drain()
        writer.close()

    with serving_handler(answer_once_then_close) as handled:
        assert isinstance(handled, HandlerServer)

        async def scenario(http: HTTPClient) -> tuple[int, str]:
            await asyncio.gather(http.get(handled.url), http.get(handled.url))  # two kept-alive connections
            retried = (await http.get(handled.url)).status_code  # the server closes the kept one it gets
            await http.get(handled.url)
            with pytest.raises(TargetError) as caught:
                await http.post(handled.url, json={"query": "mutation { charge }"})
            return retried, str(caught.value)

        retried, refused = run(scenario)
    assert retried == 200
    assert refused.endswith("the server closed the connection without answering")
    assert handled.methods.count(b"POST") == 1  # a mutation is never sent twice


def test_an_upload_is_bounded_by_the_write_timeout_not_the_read_timeout() -> None:
    body = b"x" * (4 << 20)

    async def read_slowly(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            await reader.readuntil(b"\r\n\r\n")
            left = len(body)
            while left:
                left -= len(await reader.read(left))
                await asyncio.sleep(0.01)  # longer in all than the read timeout below
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()
        writer.close()

    async def read_nothing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)
        writer.close()

    with serving_handler(read_slowly) as handled:
        response = run(lambda http: http.post(handled.url, content=body, timeout=httpx.Timeout(0.2, write=10)))
    assert response.content == b"ok"
    with serving_handler(read_nothing) as handled:
        too_much = b"x" * (64 << 20)  # more than the kernel's buffers take
        error = failure(lambda http: http.post(handled.url, content=too_much, timeout=httpx.Timeout(5, write=0.2)))
    assert isinstance(error.__cause__, httpx.WriteTimeout)
    assert str(error) == (
        f"POST {handled.url}: timed out sending the request (the server stopped taking its bytes) after 5s"
    )


def test_a_reset_in_the_middle_of_a_body_without_a_length_is_an_error() -> None:
    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\npart of the bo")
        await writer.drain()
        await asyncio.sleep(0.1)
        writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()  # RST: the server died in the middle of the body

    with serving_handler(reset) as handled:
        error = failure(lambda http: http.get(handled.url))
    assert isinstance(error.__cause__, httpx.ReadError)
    assert "connection reset" in str(error)


def test_a_header_value_with_a_line_break_is_refused_before_anything_is_sent(server: RawServer) -> None:
    error = failure(lambda http: http.get(f"{server.url}/echo", headers={"X-Id": "1\r\nX-Injected: yes"}))
    assert "a header name or value holds a CR, LF or NUL" in str(error)
    assert isinstance(error.__cause__, httpx.LocalProtocolError)
    assert server.received == []


def test_international_host_names_are_resolved_as_their_ascii_form(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []

    async def addresses(host: str, port: int) -> list[tuple[int, str]]:
        asked.append(host)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(transport, "_addresses", addresses)
    failure(lambda http: http.get("http://faß.de/"))
    assert asked == ["xn--fa-hia.de"]  # IDNA 2008, as httpx writes the Host header (IDNA 2003: fass.de)


def write_http_neighbours(checkdir: CheckDir, url: str) -> None:
    """``check_waits`` GETs ``url`` with a 1 s ``http_timeout``; as it starts waiting for the
    connection, its neighbour holds the event loop for 1.5 s."""
    write_neighbours(checkdir, "http_timeout: 1s\n", "http", f'http.get("{url}")', "assert value.status_code == 200")


def test_a_connection_made_while_a_neighbour_holds_the_loop_does_not_time_out(
    checkdir: CheckDir, server: RawServer
) -> None:
    """The connect timeout is 1 s; another check holds the event loop for 1.5 s while the
    name is resolved (on a thread). The timer and the address come due in the same turn
    once the loop is free; the neighbour's hold is given back, so the request succeeds.
    A target that is slow by itself still times out (the tests above)."""
    write_http_neighbours(checkdir, f"http://localhost:{server.port}/echo")
    result, report = checkdir.run_json()
    outcomes = outcomes_of(report)
    assert outcomes["check_waits"] == ("passed", ""), result.stdout
    assert outcomes["check_holds_the_loop"][0] == "passed"
    assert "check_holds_the_loop held the event loop for 1." in result.stdout  # the hold happened, and was seen


def test_a_connect_slow_by_itself_times_out_even_while_a_neighbour_holds_the_loop(checkdir: CheckDir) -> None:
    """The neighbour's hold is given back, and the connect, which would never complete,
    still times out on its own second."""
    with taking_no_connection() as port:
        write_http_neighbours(checkdir, f"http://127.0.0.1:{port}/")
        result, report = checkdir.run_json()
    outcomes = outcomes_of(report)
    assert outcomes["check_waits"] == ("failed", f"GET http://127.0.0.1:{port}/: timed out connecting after 1s")
    assert "check_holds_the_loop held the event loop for 1." in result.stdout
