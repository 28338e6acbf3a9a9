"""The ``http`` fixture: traceparent per check, and transport faults as one clear line."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.support import REPO
from tests.support.checkdir import CheckDir
from tests.support.fraiseql_v2 import FakeFraiseQLV2, fake_fraiseql_v2
from tests.support.services import free_port, require_binary, self_signed_certificate

CHECKS = str(REPO / "checks" / "health" / "check_fraiseql.py")


def health(checkdir: CheckDir, url: str, config: str = "paths: [.]\n") -> tuple[dict, str]:  # type: ignore[type-arg]
    checkdir.write("fraiseql-checks.yaml", config)
    result, report = checkdir.run_json("-c", "fraiseql-checks.yaml", CHECKS, "-k", "healthy", env={"FRAISEQL_URL": url})
    (only,) = report["results"]
    assert "Traceback" not in result.stdout
    return only, result.stdout


def test_http_fixture_sends_the_running_checks_traceparent(checkdir: CheckDir) -> None:
    with fake_fraiseql_v2() as server:
        checkdir.write(
            "check_http.py",
            f"""
            import pytest

            @pytest.mark.parametrize("n", range(3))
            async def check_get(http, request, n):
                response = await http.get("{server.url}/readiness")
                assert response.request.headers["traceparent"] == request.traceparent
                print(request.traceparent)
            """,
        )
        _result, report = checkdir.run_json("check_http.py")
    assert [r["outcome"] for r in report["results"]] == ["passed"] * 3
    sent = [h["traceparent"] for h in server.headers_of("/readiness")]
    assert sorted(t.split("-")[1] for t in sent) == sorted(r["trace_id"] for r in report["results"])
    assert all(h["User-Agent"].startswith("fraiseql-checks/") for h in server.headers_of("/readiness"))


def test_connection_refused(checkdir: CheckDir) -> None:
    port = free_port()
    result, _ = health(checkdir, f"http://127.0.0.1:{port}")
    assert result["outcome"] == "failed"
    assert result["message"] == f"GET http://127.0.0.1:{port}/health: connection refused"


def test_dns_failure(checkdir: CheckDir) -> None:
    # The resolver answers "no such name" here without any network traffic.
    checkdir.write(
        "conftest.py",
        """
        import socket

        _real = socket.getaddrinfo

        def getaddrinfo(host, *args, **kwargs):
            if host == "fraiseql.example.invalid":
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            return _real(host, *args, **kwargs)

        socket.getaddrinfo = getaddrinfo
        """,
    )
    checkdir.write("check_here.py", "from fraiseql_checks import check\n")
    checkdir.write("fraiseql-checks.yaml", "paths: [.]\n")
    _result, report = checkdir.run_json(
        "-c",
        "fraiseql-checks.yaml",
        ".",
        CHECKS,
        "-k",
        "healthy",
        env={"FRAISEQL_URL": "http://fraiseql.example.invalid"},
    )
    (only,) = report["results"]
    assert only["outcome"] == "failed"
    assert only["message"] == (
        "GET http://fraiseql.example.invalid/health: cannot resolve host 'fraiseql.example.invalid': "
        "Name or service not known"
    )


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[int]:
    """An HTTPS server whose certificate is self-signed (so verification fails)."""
    cert, key = self_signed_certificate(tmp_path)
    with fake_fraiseql_v2() as fake:
        server = ThreadingHTTPServer(("127.0.0.1", 0), fake.server.RequestHandlerClass)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield int(server.server_address[1])
        finally:
            server.shutdown()
            server.server_close()


def test_tls_failure(checkdir: CheckDir, tls_server: int) -> None:
    result, _ = health(checkdir, f"https://127.0.0.1:{tls_server}")
    assert result["outcome"] == "failed"
    assert result["message"].startswith(
        f"GET https://127.0.0.1:{tls_server}/health: TLS failure: certificate verify failed: self"
    )


def test_plain_http_on_a_tls_url(checkdir: CheckDir) -> None:
    with fake_fraiseql_v2() as server:
        result, _ = health(checkdir, f"https://127.0.0.1:{server.port}")
    assert result["outcome"] == "failed"
    assert result["message"].startswith(f"GET https://127.0.0.1:{server.port}/health: TLS failure: ")


@pytest.fixture
def silent_server() -> Iterator[int]:
    """Accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join()
        for connection in accepted:
            connection.close()
        listener.close()


def test_timeout(checkdir: CheckDir, silent_server: int) -> None:
    result, _ = health(checkdir, f"http://127.0.0.1:{silent_server}", config="http_timeout: 0.5s\n")
    assert result["outcome"] == "failed"
    assert (
        result["message"] == f"GET http://127.0.0.1:{silent_server}/health: timed out waiting for the answer after 0.5s"
    )
    assert result["timed_out"] is False  # the target timed out, not the check


def test_fake_server_is_v2_shaped(checkdir: CheckDir) -> None:
    """The v2 fake's /metrics passes promtool's exposition check (it is what Prometheus would scrape)."""
    promtool = require_binary("promtool")
    fake = FakeFraiseQLV2()
    checked = subprocess.run([promtool, "check", "metrics"], input=fake.metrics_text, text=True, capture_output=True)
    fake.server.server_close()
    assert checked.returncode in (0, 3), checked.stderr  # 3: naming lint only (counters without _total upstream)


_START_PROBE = """
import json, ssl, sys
loaded = []
original = ssl.SSLContext.load_verify_locations
def recording(self, cafile=None, *args, **kwargs):
    loaded.append(str(cafile))
    return original(self, cafile, *args, **kwargs)
ssl.SSLContext.load_verify_locations = recording
from fraiseql_checks.cli import console_main
sys.argv = ["fraiseql-check", *sys.argv[1:]]
try:
    console_main()
except SystemExit as exit:
    code = exit.code
import certifi
sys.stdout.write(json.dumps({"code": code, "modules": sorted(m for m, v in sys.modules.items() if v is not None), "cafile": certifi.where() in loaded}) + "\\n")
"""


def test_a_run_of_plain_http_checks_loads_no_ca_bundle_and_not_httpx_cli(tmp_path: Path) -> None:
    """certifi's CA bundle is read on the first HTTPS request, not at the client's start;
    httpx's command-line client (rich, click, pygments) is never imported by a run."""
    port = free_port()
    (tmp_path / "check_plain.py").write_text(
        f"async def check_get(http):\n    await http.get('http://127.0.0.1:{port}/')\n"
        f"async def check_tls(http):\n    await http.get('https://127.0.0.1:{port}/')\n"
    )

    def probe(*args: str) -> dict:  # type: ignore[type-arg]
        done = subprocess.run(
            [sys.executable, "-c", _START_PROBE, "-q", *args, "check_plain.py"],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
        )
        return json.loads(done.stdout.splitlines()[-1])  # type: ignore[no-any-return]

    plain = probe("-k", "check_get")
    assert plain["code"] == 1  # connection refused: the check ran its request
    assert "httpx" in plain["modules"] and "httpx._main" not in plain["modules"]
    assert plain["cafile"] is False
    assert probe("-k", "check_tls")["cafile"] is True
