"""A local HTTP server answering as a FraiseQL v2 server does (FRAISEQL.md), for tests.

The Rust server cannot run here; this serves its documented shapes: ``/health``
(``healthy`` / ``degraded`` with HTTP 200, ``unhealthy`` with HTTP 503),
``/readiness``, ``/metrics`` behind ``Authorization: Bearer <token>`` with every
metric of the v2 profile, ``/metrics/json`` and ``POST /graphql``. Tests flip its
state and read the requests it received (to see the ``traceparent`` they carried).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from fraiseql_checks.profiles import COUNTER, HISTOGRAM, PROFILES


def v2_exposition(extra: str = "") -> str:
    """Prometheus text with a sample of every metric FraiseQL v2 emits."""
    lines = []
    for metric in PROFILES["fraiseql-v2"].metrics.values():
        labels = ",".join(f'{label}="x"' for label in metric.labels)
        braces = f"{{{labels}}}" if labels else ""
        lines.append(f"# HELP {metric.name} {metric.name.replace('_', ' ')}")
        if metric.type == HISTOGRAM:
            lines.append(f"# TYPE {metric.name} histogram")
            sep = "," if labels else ""
            lines.append(f'{metric.name}_bucket{{{labels}{sep}le="0.1"}} 1')
            lines.append(f'{metric.name}_bucket{{{labels}{sep}le="+Inf"}} 2')
            lines.append(f"{metric.name}_sum{braces} 0.3")
            lines.append(f"{metric.name}_count{braces} 2")
        else:
            # Upstream writes some counters without the _total suffix (fraiseql_cache_hits).
            kind = "counter" if metric.type == COUNTER else "gauge"
            lines.append(f"# TYPE {metric.name} {kind}")
            lines.append(f"{metric.name}{braces} 1")
    return "\n".join(lines) + "\n" + extra


class FakeFraiseQLV2:
    """State of the fake server; change the attributes between check runs."""

    def __init__(self, metrics_token: str = "metrics-secret-token") -> None:
        self.status = "healthy"
        self.version = "2.1.0"
        self.schema_hash = "sha256:4f2a"
        self.ready = True
        self.metrics_token = metrics_token
        self.metrics_text = v2_exposition()
        self.graphql_answer: dict[str, Any] = {"data": {"__typename": "Query"}}
        self.health_override: tuple[int, str, str] | None = None  # (status, content type, body)
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def health_body(self) -> tuple[int, dict[str, Any]]:
        body: dict[str, Any] = {
            "status": self.status,
            "database": {
                "connected": self.status != "unhealthy",
                "database_type": "postgresql",
                "active_connections": 2,
                "idle_connections": 8,
            },
            "cache": {"connected": self.status == "healthy", "backend": "redis"},
            "version": self.version,
            "schema_hash": self.schema_hash,
        }
        return (503 if self.status == "unhealthy" else 200), body

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
                    self._send(*fake.health_body())
                elif self.path == "/readiness":
                    if fake.ready:
                        self._send(200, {"status": "ready"})
                    else:
                        self._send(503, {"status": "not_ready", "reason": "database unavailable"})
                elif self.path == "/metrics":
                    if self.headers.get("Authorization") != f"Bearer {fake.metrics_token}":
                        self._send(401, "Unauthorized", "text/plain")
                    else:
                        self._send(200, fake.metrics_text, "text/plain; version=0.0.4")
                elif self.path == "/metrics/json":
                    self._send(200, {"queries_total": 3, "queries_success": 3, "queries_error": 0})
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
def fake_fraiseql_v2(metrics_token: str = "metrics-secret-token") -> Iterator[FakeFraiseQLV2]:
    fake = FakeFraiseQLV2(metrics_token)
    fake.thread.start()
    try:
        yield fake
    finally:
        fake.server.shutdown()
        fake.server.server_close()
