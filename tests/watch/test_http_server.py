"""The watcher's HTTP server against hostile and broken clients.

The real server runs on an event loop in a thread, on a free loopback port; the
tests talk to it through plain sockets and read its counters. A flood of half-sent
requests must not blind ``/healthz``, slow or silent clients are cut off by the
head, idle and write timeouts, and keep-alive, pipelining and 400s still work.
"""

from __future__ import annotations

import asyncio
import collections
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import h11
import psutil
import pytest

from fraiseql_checks.watch.http import HTTPServer, Page, batches
from tests.support.services import free_port, wait_until

REPO = Path(__file__).resolve().parents[2]
T = TypeVar("T")

#: A request head without its final blank line: the server waits for the rest.
HALF_SENT = b"GET /healthz HTTP/1.1\r\nHost: x\r\n"


def request(path: str, method: str = "GET", *, close: bool = False) -> bytes:
    connection = b"connection: close\r\n" if close else b""
    return f"{method} {path} HTTP/1.1\r\nhost: x\r\n".encode() + connection + b"\r\n"


class ServerThread:
    """An event loop in a thread, where the servers under test run."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.servers: list[HTTPServer] = []

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(30)

    def start(self, **options: Any) -> HTTPServer:
        server = HTTPServer(**options)
        server.routes["/healthz"] = lambda: Page(200, b"ok\n")
        self.run(server.start("127.0.0.1", free_port()))
        self.servers.append(server)
        return server

    def stop(self) -> None:
        for server in self.servers:
            self.run(server.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def served() -> Iterator[ServerThread]:
    thread = ServerThread()
    yield thread
    thread.stop()


def port_of(server: HTTPServer) -> int:
    return int(server.address.rsplit(":", 1)[1])


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10)


class Responses:
    """The responses on one client connection, in order, parsed by h11."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.conn = h11.Connection(h11.CLIENT)

    def next(self, method: str = "GET") -> tuple[int, dict[bytes, bytes], bytes]:
        conn = self.conn
        if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
            conn.start_next_cycle()
        # The request went out as raw bytes; this only tells h11 what answer to expect.
        conn.send(h11.Request(method=method, target="/", headers=[("host", "x")]))
        conn.send(h11.EndOfMessage())
        status, headers, body = 0, {}, b""
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(self.sock.recv(65536))
            elif isinstance(event, h11.Response):
                status, headers = event.status_code, dict(event.headers)
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                return status, headers, body
            else:
                raise AssertionError(f"the connection ended before the response: {event}")


def ask(port: int, path: str) -> tuple[int, bytes]:
    """One request on a new connection, as a probe makes it."""
    with connect(port) as sock:
        sock.sendall(request(path, close=True))
        status, _, body = Responses(sock).next()
        return status, body


def closed_by_server(sock: socket.socket) -> bool:
    timeout = sock.gettimeout()
    sock.settimeout(0.0)  # a socket with a timeout would wait for news first, even with MSG_DONTWAIT
    try:
        return sock.recv(1) == b""
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True
    finally:
        sock.settimeout(timeout)


def server_side_sockets(port: int) -> int:
    """Connected sockets this process holds on the server's end of ``port``."""
    return sum(
        1
        for c in psutil.Process().net_connections("tcp")
        if c.laddr and c.laddr.port == port and c.status != psutil.CONN_LISTEN
    )


def test_a_flood_of_half_sent_requests_cannot_blind_healthz(served: ServerThread) -> None:
    cap, batches, per_batch = 32, 40, 50  # 2,000 connections, the newest `cap` kept
    server = served.start(max_connections=cap)
    port = port_of(server)
    live: collections.deque[socket.socket] = collections.deque()

    def reap() -> int:
        """Close the client ends the server closed, oldest first; how many are left."""
        while live and closed_by_server(live[0]):
            live.popleft().close()
        return len(live)

    opened = probes = peak = 0
    try:
        for batch in range(batches):
            for _ in range(per_batch):
                sock = connect(port)
                sock.sendall(HALF_SENT)
                live.append(sock)
                opened += 1
                peak = max(peak, server.connections_open)
            accepted = opened + probes
            wait_until(lambda n=accepted: server.connections_accepted_total == n, timeout=10, what="the batch")
            # Evicted oldest first: what is still open is exactly the newest `cap`.
            wait_until(lambda: reap() == cap, timeout=10, what="only the newest connections to be left")
            assert server.connections_open == cap
            wait_until(lambda: server_side_sockets(port) == cap, timeout=10, what="the evicted sockets to close")
            if batch % 10 == 9:
                assert ask(port, "/healthz") == (200, b"ok\n")
                probes += 1
                wait_until(lambda: reap() == cap - 1, timeout=10, what="the probe to evict the oldest")
        assert ask(port, "/healthz") == (200, b"ok\n")
        probes += 1
        assert peak <= cap
        assert server.connections_accepted_total == opened + probes
        wait_until(lambda: reap() == cap - 1, timeout=10)
        wait_until(lambda: server.connections_open == cap - 1, timeout=10, what="the probe's connection to close")
        assert server.connections_evicted_total == opened - server.connections_open
        assert (server.connections_rejected_total, server.requests_timed_out_total) == (0, 0)
    finally:
        for sock in live:
            sock.close()


_LOW_LIMIT_SERVER = """
import asyncio, resource, socket, sys
from fraiseql_checks.watch.http import HTTPServer, Page

limit, cap, port = map(int, sys.argv[1:])
resource.setrlimit(resource.RLIMIT_NOFILE, (limit, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))

def healthz():
    socket.socket().close()  # what a check that connects does first: EMFILE once descriptors ran out
    return Page(200, b"ok\\n")

async def main():
    server = HTTPServer(max_connections=cap)
    server.routes["/healthz"] = healthz
    await server.start("127.0.0.1", port)
    print("listening", flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


def test_a_flood_larger_than_the_descriptor_limit_leaves_healthz_and_new_sockets_working() -> None:
    # 20,000 idle connections against a limit of 20,000, scaled down. The room above the cap
    # is for what asyncio accepts in a burst before the server sees it (up to ~3 x 100).
    limit, cap, flood = 512, 32, 600
    port = free_port()
    args = [sys.executable, "-c", _LOW_LIMIT_SERVER, str(limit), str(cap), str(port)]
    process = subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    socks: list[socket.socket] = []
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == "listening\n", process.communicate()[1]
        for _ in range(flood):
            sock = connect(port)
            sock.sendall(HALF_SENT)
            socks.append(sock)
        assert ask(port, "/healthz") == (200, b"ok\n")
    finally:
        for sock in socks:
            sock.close()
        process.kill()
        _, stderr = process.communicate(timeout=10)
    assert "Too many open files" not in stderr, stderr


def trickle_until_closed(sock: socket.socket, within: float, trickle: bool) -> bool:
    """Send one more header byte whenever 50 ms pass without news; True once the server closes."""
    sock.settimeout(0.05)
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            data = sock.recv(1024)
        except TimeoutError:
            if trickle:
                try:
                    sock.sendall(b"a")
                except (BrokenPipeError, ConnectionResetError):
                    return True
            continue
        except ConnectionResetError:
            return True
        assert data == b"", f"an answer to a head that never ended: {data!r}"
        return True
    return False


@pytest.mark.parametrize(
    "after_a_response, trickle",
    [(False, False), (False, True), (True, True)],
    ids=["silent", "trickling", "trickling-after-a-kept-alive-response"],
)
def test_a_head_that_does_not_arrive_whole_in_time_is_cut_off(
    served: ServerThread, after_a_response: bool, trickle: bool
) -> None:
    server = served.start(head_timeout=0.5, keep_alive_timeout=60.0)
    with connect(port_of(server)) as sock:
        if after_a_response:
            sock.sendall(request("/healthz"))
            assert Responses(sock).next()[0] == 200
        if trickle:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-slow: ")
        assert trickle_until_closed(sock, within=15, trickle=trickle)
    assert server.requests_timed_out_total == 1
    wait_until(lambda: server.connections_open == 0, timeout=10)


def test_an_idle_kept_alive_connection_is_closed_and_not_counted_as_a_timed_out_request(served: ServerThread) -> None:
    server = served.start(keep_alive_timeout=0.5, head_timeout=60.0)
    with connect(port_of(server)) as sock:
        sock.sendall(request("/healthz"))
        assert Responses(sock).next()[0] == 200
        assert trickle_until_closed(sock, within=15, trickle=False)
    wait_until(lambda: server.connections_open == 0, timeout=10)
    assert server.requests_timed_out_total == 0


def test_keep_alive_and_pipelined_requests_are_answered_in_order_on_one_connection(served: ServerThread) -> None:
    server = served.start()
    big = [b"b" * 300_000] * 4  # one batch of the body writer (1 MiB at least, or the last)

    async def b_page() -> Page:
        await asyncio.sleep(0)
        return Page(200, big)

    server.routes["/a"] = lambda: Page(200, b"a\n")
    server.routes["/b"] = b_page  # a page to wait for: made and sent in a task
    server.routes["/c"] = lambda: Page(200, big)  # ready at once: written in the turn that read the request
    with connect(port_of(server)) as sock:
        responses = Responses(sock)
        for path, body in [("/a", b"a\n"), ("/b", b"".join(big)), ("/c", b"".join(big)), ("/a", b"a\n")]:
            sock.sendall(request(path))
            status, _, received = responses.next()
            assert (status, received) == (200, body)

        burst = [("GET", "/a"), ("HEAD", "/b"), ("GET", "/nope"), ("GET", "/b"), ("HEAD", "/c"), ("GET", "/c")]
        burst += [("GET", "/a")] * 2000  # pipelined: answered one after another, not by recursion
        sent = b"".join(request(path, method) for method, path in burst)
        sock.sendall(sent[:40])  # the first head arrives in two pieces
        sock.sendall(sent[40:])
        answers = [responses.next(method) for method, _ in burst]
        assert [(status, body) for status, _, body in answers[:6]] == [
            (200, b"a\n"),
            (200, b""),
            (404, b"not found; this watcher serves:\n/a\n/b\n/c\n/healthz\n"),
            (200, b"".join(big)),
            (200, b""),
            (200, b"".join(big)),
        ]
        assert answers[1][1][b"content-length"] == str(len(b"".join(big))).encode()
        assert answers[4][1][b"content-length"] == str(len(b"".join(big))).encode()
        assert {(status, body) for status, _, body in answers[6:]} == {(200, b"a\n")}
        assert server.connections_open == 1
    assert server.connections_accepted_total == 1


def test_a_ready_page_the_client_reads_slowly_is_sent_whole_and_the_next_request_answered(
    served: ServerThread,
) -> None:
    """A page made at once is written in the turn that read the request until the socket
    is full; the rest goes out as the client reads, then the pipelined request after it."""
    server = served.start()
    big = [bytes([65 + i]) * 1_100_000 for i in range(8)]  # 8.8 MB, several batches, past any socket buffer
    server.routes["/big"] = lambda: Page(200, big)
    server.routes["/a"] = lambda: Page(200, b"a\n")
    server.routes["/none"] = lambda: None  # type: ignore[arg-type,return-value]
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(10)
        sock.connect(("127.0.0.1", port_of(server)))
        sock.sendall(request("/big") + request("/a"))
        wait_until(
            lambda: any(conn.task is not None for conn in server._open),
            timeout=10,
            what="the rest of the page waiting for the client in a task",
        )
        # what waits in the watcher's memory is a batch, not the page
        assert max(conn.transport.get_write_buffer_size() for conn in server._open) < 2 * len(big[0])
        responses = Responses(sock)
        status, headers, body = responses.next()
        assert (status, headers[b"content-length"], body == b"".join(big)) == (200, b"8800000", True)
        assert responses.next()[::2] == (200, b"a\n")
    assert ask(port_of(server), "/none") == (500, b"internal error; the watcher's log says why\n")
    assert server.requests_timed_out_total == 0


@pytest.mark.parametrize(
    "head, status",
    [
        (b"NONSENSE\r\n\r\n", 400),
        (b"GET /healthz HTTP/1.1\r\n\r\n", 400),  # HTTP/1.1 without Host
        (b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-big: " + b"a" * 17_000, 431),  # still no end past 16 KiB
    ],
    ids=["garbage", "no-host", "head-too-large"],
)
def test_a_malformed_request_gets_its_4xx_and_the_connection_is_closed(
    served: ServerThread, head: bytes, status: int
) -> None:
    server = served.start()
    with connect(port_of(server)) as sock:
        sock.sendall(request("/healthz") + head)  # behind a good request on the same connection
        responses = Responses(sock)
        assert responses.next()[0] == 200
        answer, headers, body = responses.next()
        assert (answer, headers[b"connection"]) == (status, b"close")
        assert body.startswith(b"bad request: ")
        assert sock.recv(1) == b""
    wait_until(lambda: server.connections_open == 0, timeout=10)


def test_a_client_that_stops_reading_is_dropped_after_the_write_timeout_and_others_are_answered(
    served: ServerThread,
) -> None:
    server = served.start(write_timeout=2.0)
    asked = threading.Event()

    def big() -> Page:
        asked.set()
        return Page(200, [b"x" * 65536] * 256)  # 16 MiB, far more than the socket buffers hold

    server.routes["/big"] = big
    port = port_of(server)
    with socket.socket() as stuck:
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stuck.connect(("127.0.0.1", port))
        stuck.sendall(request("/big"))
        assert asked.wait(10)
        assert ask(port, "/healthz") == (200, b"ok\n")
        assert server.requests_timed_out_total == 0  # answered while the stuck response still waited
        wait_until(lambda: server.requests_timed_out_total == 1, timeout=15, what="the stuck client to be dropped")
        wait_until(lambda: server.connections_open == 0, timeout=10)
        wait_until(lambda: server_side_sockets(port) == 0, timeout=10)


def test_a_connection_busy_answering_is_never_evicted_and_when_all_are_busy_a_newcomer_gets_503(
    served: ServerThread,
) -> None:
    server = served.start(max_connections=2)
    release = asyncio.Event()
    holding: list[int] = []

    async def hold() -> Page:
        holding.append(1)
        await release.wait()
        return Page(200, b"held\n")

    server.routes["/hold"] = hold
    port = port_of(server)
    with connect(port) as first, connect(port) as waiting:
        first.sendall(request("/hold"))
        wait_until(lambda: len(holding) == 1, timeout=10)
        waiting.sendall(HALF_SENT)
        wait_until(lambda: server.connections_open == 2, timeout=10)
        assert ask(port, "/healthz") == (200, b"ok\n")  # made room by evicting the waiting one
        wait_until(lambda: closed_by_server(waiting), timeout=10)
        assert server.connections_evicted_total == 1

        with connect(port) as second:
            second.sendall(request("/hold"))
            wait_until(lambda: len(holding) == 2, timeout=10)
            status, body = ask(port, "/healthz")
            assert (status, server.connections_rejected_total) == (503, 1), body

            served.loop.call_soon_threadsafe(release.set)
            for sock in (first, second):
                status, _, body = Responses(sock).next()
                assert (status, body) == (200, b"held\n")
    assert ask(port, "/healthz") == (200, b"ok\n")
    assert server.connections_evicted_total == 1


def test_batches_join_small_pieces_and_pass_a_large_one_on_without_copying_it() -> None:
    big = b"x" * 10_000
    got = list(batches([b"a" * 40, b"b" * 70, b"", big, b"c" * 30, b"d" * 90, b"e" * 5], 100))
    assert got == [b"a" * 40 + b"b" * 70, big, b"c" * 30 + b"d" * 90, b"e" * 5]
    assert got[1] is big  # the page's largest columns are megabytes: sent as they are
    assert list(batches([b"", b""], 100)) == []
