"""Bad input to a live watcher's API gets a 4xx JSON error of one shape, never a 5xx or a traceback;
tokens are never echoed; slow clients and floods of connections cannot blind it."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support.checkdir import CheckDir
from tests.support.watcher import WatchProcess

ADMIN, READ = "admin-token-badinput-77e0", "read-token-badinput-1a9f"
CHECK = "checks/check_things.py::check_good"
CHECKS = """
from fraiseql_checks import check

@check(interval="1s")
def check_good():
    pass
"""
#: The head timeout of the watcher's HTTP server (watch/http.py).
HEAD_TIMEOUT = 10.0


class Client:
    """Raw HTTP/1.1 over a socket, so that nothing is corrected on the way; every answer is kept."""

    def __init__(self, watcher: WatchProcess) -> None:
        self.watcher = watcher
        self.answers: list[bytes] = []

    def call(
        self,
        method: str,
        path: str,
        token: str | None = READ,
        body: bytes | None = None,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], Any]:
        head = [f"{method} {path} HTTP/1.1", f"Host: {self.watcher.address}", "Connection: close"]
        if token is not None:
            head.append(f"Authorization: Bearer {token}")
        if body is not None:
            head += [f"Content-Type: {content_type}", f"Content-Length: {len(body)}"]
        head += [f"{k}: {v}" for k, v in (headers or {}).items()]
        raw = ("\r\n".join(head) + "\r\n\r\n").encode() + (body or b"")
        with socket.create_connection(_address(self.watcher), timeout=15) as sock:
            sock.sendall(raw)
            answer = _read_all(sock)
        self.answers.append(answer)
        status_line, _, rest = answer.partition(b"\r\n")
        header_block, _, payload = rest.partition(b"\r\n\r\n")
        answer_headers = {}
        for line in header_block.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            answer_headers[name.strip().lower()] = value.strip()
        status = int(status_line.split()[1])
        parsed = (
            json.loads(payload) if answer_headers.get("content-type", "").startswith("application/json") else payload
        )
        return status, answer_headers, parsed


def _address(watcher: WatchProcess) -> tuple[str, int]:
    host, _, port = watcher.address.rpartition(":")
    return host, int(port)


def _read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def assert_error(answer: tuple[int, dict[str, str], Any], status: int, code: str | None = None) -> dict[str, Any]:
    got, headers, body = answer
    assert got == status, body
    assert headers["content-type"].startswith("application/json"), (headers, body)
    assert isinstance(body, dict) and set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert set(error) == {"status", "code", "message"} and error["status"] == status and error["message"]
    if code is not None:
        assert error["code"] == code, error
    return error


@pytest.fixture
def start(checkdir: CheckDir, watch: Callable[..., WatchProcess]) -> Iterator[Callable[..., WatchProcess]]:
    started: list[WatchProcess] = []

    def run(**tokens: str) -> WatchProcess:
        checkdir.write("fraiseql-checks.yaml", "start_jitter: 10ms\n")
        checkdir.write("checks/check_things.py", CHECKS)
        watcher = watch(env=checkdir.env(**tokens))
        watcher.wait_for(lambda s: watcher.runs(CHECK) >= 1, what="a run")
        started.append(watcher)
        return watcher

    yield run
    for watcher in started:
        assert watcher.stop() == 0
        log = watcher.stdout + watcher.stderr
        assert ADMIN not in log and READ not in log, "a token in the log"
        assert "Traceback" not in log, log


@pytest.fixture
def watcher(start: Callable[..., WatchProcess]) -> WatchProcess:
    return start(FRAISEQL_CHECKS_API_TOKEN=ADMIN, FRAISEQL_CHECKS_API_READ_TOKEN=READ)


def body_route(client: Client) -> str | None:
    """A write route that takes a JSON body, from the OpenAPI document (silences when they exist)."""
    _, _, document = client.call("GET", "/api/v1/openapi.json")
    with_body = [
        path
        for path, operations in document["paths"].items()
        if "{" not in path and "requestBody" in operations.get("post", {})
    ]
    return "/api/v1/silences" if "/api/v1/silences" in with_body else next(iter(with_body), None)


def test_bad_requests_get_a_json_error_of_one_shape_and_tokens_are_never_echoed(watcher: WatchProcess) -> None:
    client = Client(watcher)
    quoted = urllib.parse.quote(CHECK, safe="")
    assert client.call("GET", f"/api/v1/checks/{quoted}")[0] == 200

    assert_error(client.call("GET", "/api/v1/checks/checks%2Fnope.py%3A%3Acheck_nope"), 404, "not_found")
    assert_error(client.call("POST", "/api/v1/checks/checks%2Fnope.py%3A%3Acheck_nope/run", ADMIN), 404)
    assert_error(client.call("GET", "/api/v1/no-such-route"), 404, "not_found")
    assert_error(client.call("GET", "/api/v2/checks"), 404)
    error = assert_error(client.call("DELETE", "/api/v1/checks"), 405, "method_not_allowed")
    assert "DELETE" in error["message"]
    status, headers, _ = client.call("DELETE", "/api/v1/checks")
    assert "GET" in headers.get("allow", ""), headers
    assert_error(client.call("GET", "/api/v1/checks?limit=many"), 400, "bad_parameter")
    assert_error(client.call("GET", "/api/v1/checks?limit=100000"), 400, "bad_parameter")
    assert_error(client.call("GET", "/api/v1/checks?state=sideways"), 400, "bad_parameter")
    assert_error(client.call("GET", "/api/v1/checks?limt=5"), 400, "unknown_parameter")
    error = assert_error(client.call("GET", f"/api/v1/checks/{quoted}/results?since=yesterday"), 400, "bad_parameter")
    assert error["message"] == "since must be a time (RFC 3339 or epoch seconds), got 'yesterday'", error

    # tokens: none, a wrong one, the read token on a write route
    status, headers, body = client.call("GET", "/api/v1/checks", token=None)
    assert_error((status, headers, body), 401, "unauthorized")
    assert headers["www-authenticate"].startswith("Bearer")
    status, headers, body = client.call("GET", "/api/v1/checks", token=ADMIN + "x")
    assert_error((status, headers, body), 401)
    assert "www-authenticate" in headers, headers
    assert_error(client.call("GET", "/api/v1/checks", token=None, headers={"Authorization": "Basic " + ADMIN}), 401)
    assert_error(client.call("POST", f"/api/v1/checks/{quoted}/run", READ), 403, "forbidden")
    assert_error(client.call("POST", f"/api/v1/checks/{quoted}/run", token=None), 401)

    # bodies
    route = body_route(client)
    assert route == "/api/v1/silences"  # the route that takes a JSON body: its absence is a failure
    assert_error(client.call("POST", route, ADMIN, b'{"matchers": {'), 400, "malformed_json")
    assert_error(client.call("POST", route, ADMIN, b"\xff\xfe not utf-8"), 400, "malformed_json")
    assert_error(client.call("POST", route, ADMIN, b'"a string, not an object"'), 422, "invalid_body")
    assert_error(client.call("POST", route, ADMIN, b'{"matchers": 5, "reason": [], "ends_at": {}}'), 422)
    assert_error(client.call("POST", route, ADMIN, b"matchers=x", content_type="text/plain"), 415)
    assert_error(client.call("POST", route, READ, b"{}"), 403)
    past = {"matchers": {"check": "*"}, "reason": "maintenance", "ends_at": "2001-01-01T00:00:00Z"}
    assert_error(client.call("POST", route, ADMIN, json.dumps(past).encode()), 422)
    too_big = b'{"reason": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    assert_error(client.call("POST", route, ADMIN, too_big), 413, "payload_too_large")
    assert_error(client.call("GET", "/api/v1/checks", READ, too_big), 413)

    # the watcher answers on after all of it, and nothing it said holds a token or a traceback
    assert client.call("GET", "/healthz", token=None)[0] == 200
    for answer in client.answers:
        assert ADMIN.encode() not in answer and READ.encode() not in answer, answer[:500]
        assert b"Traceback" not in answer and b'File "' not in answer, answer[:2000]
        assert not answer.startswith(b"HTTP/1.1 5"), answer[:2000]


def test_without_an_admin_token_every_write_is_403_for_everyone(start: Callable[..., WatchProcess]) -> None:
    watcher = start(FRAISEQL_CHECKS_API_READ_TOKEN=READ)
    client = Client(watcher)
    quoted = urllib.parse.quote(CHECK, safe="")
    for token in (None, READ, ADMIN, "anything"):
        error = assert_error(client.call("POST", f"/api/v1/checks/{quoted}/run", token), 403, "forbidden")
        assert "api.token" in error["message"]
    assert client.call("GET", "/api/v1/checks", READ)[0] == 200
    assert_error(client.call("GET", "/api/v1/checks", ADMIN), 401)  # not configured: just a wrong token


def dribble(watcher: WatchProcess, first: bytes, rest: bytes, every: float) -> float:
    """Send ``first``, then ``rest`` a byte every ``every`` seconds until the server closes; seconds it took."""
    with socket.create_connection(_address(watcher), timeout=HEAD_TIMEOUT * 3) as sock:
        started = time.monotonic()
        sock.sendall(first)
        for byte in rest:
            time.sleep(every)
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                break
            sock.settimeout(0.001)
            try:
                if sock.recv(65536) == b"":
                    break
            except (BlockingIOError, TimeoutError):
                pass
            except OSError:
                break
            sock.settimeout(HEAD_TIMEOUT * 3)
        return time.monotonic() - started


@pytest.mark.slow
def test_a_slow_client_is_dropped_after_the_head_timeout_and_a_flood_cannot_blind_healthz(
    watcher: WatchProcess,
) -> None:
    head = f"GET /api/v1/checks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {READ}\r\nX-Padding: ".encode()
    post = (
        f"POST /api/v1/checks/x/run HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN}\r\n"
        "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
    ).encode()
    took: dict[str, float] = {}
    threads = [
        threading.Thread(target=lambda: took.__setitem__("head", dribble(watcher, b"G", head[1:] + b"a" * 200, 0.2))),
        threading.Thread(target=lambda: took.__setitem__("body", dribble(watcher, post, b'"a": 1' * 100, 0.2))),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=HEAD_TIMEOUT * 4)

    # then a flood of half-sent requests, more than the connection cap (256): the oldest are evicted
    flood = []
    try:
        for _ in range(320):
            sock = socket.create_connection(_address(watcher), timeout=5)
            sock.sendall(b"GET /api/v1/checks HTTP/1.1\r\nHost: x\r\n")
            flood.append(sock)
        client = Client(watcher)
        for _ in range(5):
            status, _, body = client.call("GET", "/healthz", token=None)
            assert (status, body) == (200, b"ok\n")
    finally:
        for sock in flood:
            sock.close()
    assert HEAD_TIMEOUT - 1 <= took["head"] <= HEAD_TIMEOUT + 5, took
    assert HEAD_TIMEOUT - 1 <= took["body"] <= HEAD_TIMEOUT + 5, took
    assert (watcher.value("fraiseql_check_http_request_timeouts_total") or 0) >= 2
    assert (watcher.value("fraiseql_check_http_connections_evicted_total") or 0) >= 320 - 256
