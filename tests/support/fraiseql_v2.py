"""A local HTTP server answering as a FraiseQL v2 server does, with answers recorded from FRAISEQL.md.

The Rust server cannot run here. This one serves the answers committed in
``tests/data/fraiseql/v2/`` (written by hand from FRAISEQL.md; see the README there),
never anything built from ``fraiseql_checks``: ``/health`` (``healthy`` and
``degraded`` with HTTP 200, ``unhealthy`` with HTTP 503), ``/readiness``,
``/metrics`` behind ``Authorization: Bearer <token>``, ``/metrics/json`` and
``POST /graphql``. Tests switch the recorded answer it gives and read the requests
it received (to see the ``traceparent`` they carried).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parents[1] / "data" / "fraiseql"
V2 = DATA / "v2"
#: A metrics token FraiseQL accepts: it refuses to start with one shorter than 16 characters.
DEFAULT_TOKEN = "metrics-secret-token"
MIN_TOKEN_LENGTH = 16
#: The recorded ``/health`` body of each status.
HEALTH = {
    "healthy": "health-healthy.json",
    "degraded": "health-degraded.json",
    "unhealthy": "health-unhealthy.json",
}
#: The two recorded ``/metrics`` pages: with and without the ``observers-metrics`` feature.
PAGE = "metrics.txt"
PAGE_WITHOUT_OBSERVERS = "metrics-without-observers.txt"


def recorded_page(name: str = PAGE, folder: Path = V2) -> str:
    """A recorded ``/metrics`` page as the server sends it (without the note on where it comes from)."""
    lines = (folder / name).read_text(encoding="utf-8").splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.startswith("# HELP "))
    return "".join(lines[start:])


def recorded_json(name: str, folder: Path = V2) -> dict[str, Any]:
    """A recorded JSON answer (``health-*.json``, ``readiness-*.json``, ``metrics.json``)."""
    body = json.loads((folder / name).read_text(encoding="utf-8"))
    assert isinstance(body, dict), name
    return body


class FakeFraiseQLV2:
    """State of the fake server; change the attributes between check runs.

    ``status`` picks the recorded ``/health`` body of that status; ``health`` is the body
    itself (set it, or ``use_health(file)``, for another recorded shape); ``ready``,
    ``metrics_text`` (``recorded_page(PAGE_WITHOUT_OBSERVERS)`` for a build without
    observer metrics) and ``graphql_answer`` likewise.
    """

    def __init__(self, metrics_token: str = DEFAULT_TOKEN, metrics_page: str = PAGE) -> None:
        if len(metrics_token) < MIN_TOKEN_LENGTH:
            # FraiseQL v2 does not start with metrics enabled and a short token: neither does its fake.
            raise ValueError(
                f"FRAISEQL_METRICS_TOKEN must be at least {MIN_TOKEN_LENGTH} characters, got {len(metrics_token)}"
            )
        self.health: dict[str, Any] = recorded_json(HEALTH["healthy"])
        self.ready = True
        self.metrics_token = metrics_token
        self.metrics_text = recorded_page(metrics_page)
        self.graphql_answer: dict[str, Any] = {"data": {"__typename": "Query"}}
        self.health_override: tuple[int, str, str] | None = None  # (status, content type, body)
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def status(self) -> str:
        return str(self.health["status"])

    @status.setter
    def status(self, value: str) -> None:
        self.health = recorded_json(HEALTH[value])

    def use_health(self, name: str) -> None:
        """Answer ``/health`` with another recorded body (``health-before-2.15.json``...)."""
        self.health = recorded_json(name)

    def health_answer(self) -> tuple[int, dict[str, Any]]:
        # FRAISEQL.md: HTTP 503 only when the database is down (unhealthy); degraded is HTTP 200.
        return (503 if self.health.get("status") == "unhealthy" else 200), self.health

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _send(self, status: int, body: Any, content_type: str = "application/json") -> None:
                data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                fake.requests.append(("GET", self.path, dict(self.headers)))
                if self.path == "/health":
                    if fake.health_override is not None:
                        status, kind, text = fake.health_override
                        self._send(status, text, kind)
                        return
                    self._send(*fake.health_answer())
                elif self.path == "/readiness":
                    if fake.ready:
                        self._send(200, recorded_json("readiness-ready.json"))
                    else:
                        self._send(503, recorded_json("readiness-not-ready.json"))
                elif self.path == "/metrics":
                    if self.headers.get("Authorization") != f"Bearer {fake.metrics_token}":
                        self._send(401, "Unauthorized", "text/plain")
                    else:
                        self._send(200, fake.metrics_text, "text/plain; version=0.0.4")
                elif self.path == "/metrics/json":
                    self._send(200, recorded_json("metrics.json"))
                else:
                    self._send(404, {"error": "not found"})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                payload = self.rfile.read(length)
                fake.requests.append(("POST", self.path, dict(self.headers)))
                if self.path != "/graphql":
                    self._send(404, {"error": "not found"})
                    return
                query = json.loads(payload).get("query", "")
                if "{" not in query:
                    self._send(200, {"errors": [{"message": f"Syntax Error: unexpected {query!r}"}]})
                    return
                self._send(200, fake.graphql_answer)

        return Handler

    def headers_of(self, path: str) -> list[dict[str, str]]:
        return [headers for _, p, headers in self.requests if p == path]


@contextmanager
def fake_fraiseql_v2(metrics_token: str = DEFAULT_TOKEN, metrics_page: str = PAGE) -> Iterator[FakeFraiseQLV2]:
    fake = FakeFraiseQLV2(metrics_token, metrics_page)
    fake.thread.start()
    try:
        yield fake
    finally:
        fake.server.shutdown()
        fake.server.server_close()
