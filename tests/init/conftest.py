"""Fixtures of the init tests: FraiseQL servers on loopback answering as FRAISEQL.md describes."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.support import DATA
from tests.support.fraiseql_v2 import FakeFraiseQLV2, fake_fraiseql_v2, recorded_page

V1 = DATA / "fraiseql" / "v1"


class FakeFraiseQLV1:
    """A FraiseQL v1 server's answers, recorded in ``tests/data/fraiseql/v1``: ``/health``,
    ``/ready`` and an open ``/metrics`` (v1 asks for no token)."""

    def __init__(self) -> None:
        answers: dict[str, tuple[str, str]] = {
            "/health": ("application/json", (V1 / "health.json").read_text(encoding="utf-8")),
            "/ready": ("application/json", (V1 / "ready.json").read_text(encoding="utf-8")),
            "/metrics": ("text/plain; version=0.0.4", recorded_page("metrics.txt", V1)),
        }

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                kind, text = answers.get(self.path, ("application/json", json.dumps({"detail": "Not Found"})))
                data = text.encode()
                self.send_response(200 if self.path in answers else 404)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def fraiseql_v2() -> Iterator[FakeFraiseQLV2]:
    with fake_fraiseql_v2() as fake:
        yield fake


@pytest.fixture
def fraiseql_v1() -> Iterator[FakeFraiseQLV1]:
    fake = FakeFraiseQLV1()
    thread = threading.Thread(target=fake.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        fake.server.shutdown()
        fake.server.server_close()
