"""Real services for tests: free ports, required tools, throwaway PostgreSQL and Redis,
Prometheus, Alertmanager, and a local receiver for what Alertmanager sends.

A test that stops a server mid-run starts its own throwaway one (a data folder of
its own, a free loopback port), so the shared servers of the machine are never
disturbed. A tool that is missing skips the test with a loud reason, except under
``CI=true``, where it fails: CI installs everything (``.ci/run``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import http.server
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import asyncpg
import pytest

#: The shared PostgreSQL the machine (and .ci/run) starts, with its `test` database.
PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"
PG_BIN_CANDIDATES = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


def postgres_listening() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 5432), timeout=1).close()
    except OSError:
        return False
    return True


@contextlib.contextmanager
def throwaway_schema() -> Iterator[str]:
    """A DSN on the shared PostgreSQL whose tables land in a fresh schema, dropped afterwards."""
    require(postgres_listening(), "PostgreSQL is not listening on 127.0.0.1:5432")
    schema = f"t_{uuid.uuid4().hex[:12]}"

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(PG_DSN)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{PG_DSN}?search_path={schema}"
    finally:
        asyncio.run(run(f"DROP SCHEMA {schema} CASCADE"))


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for localhost and 127.0.0.1 (``openssl req``), and its key,
    written to ``folder``: the certificate trusts only itself, so verification fails unless
    the client is given it as its CA."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            require_binary("openssl"),
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(condition: bool, reason: str) -> None:
    """Skip loudly when ``condition`` is false; fail instead under ``CI=true``."""
    if condition:
        return
    if in_ci():
        pytest.fail(f"CI=true but {reason}: .ci/run should have installed it", pytrace=False)
    pytest.skip(f"NOT TESTED HERE: {reason}")


def require_binary(name: str, *extra_dirs: Path) -> str:
    found = shutil.which(name)
    for directory in extra_dirs:
        candidate = directory / name
        if found is None and candidate.exists():
            found = str(candidate)
    require(found is not None, f"{name} is not installed")
    assert found is not None
    return found


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def _pg_bin(name: str) -> str:
    return require_binary(name, *PG_BIN_CANDIDATES)


class ThrowawayPostgres:
    """A PostgreSQL server in a temporary folder, for tests that stop and start it.

    ``initdb`` refuses to run as root; as root the server runs as the ``postgres``
    user (which the Debian package creates).
    """

    def __init__(self, password: str | None = None, preload: str | None = None, settings: Sequence[str] = ()) -> None:
        self.port = free_port()
        #: Extra server settings, e.g. ``shared_preload_libraries=pg_stat_statements``.
        self.settings = tuple(settings) + ((f"shared_preload_libraries={preload}",) if preload else ())
        self.root = Path(tempfile.mkdtemp(prefix="fraiseql-checks-pg-"))
        self.data = self.root / "data"
        self.password = password
        self.user: str | None = None
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                pytest.fail("running as root needs a 'postgres' user for a throwaway server")
            self.user = "postgres"
            shutil.chown(self.root, "postgres")
        auth = ["-A", "trust"]
        if password is not None:  # password authentication, for wrong-credential cases
            pwfile = self.root / "pwfile"
            pwfile.write_text(password + "\n")
            if self.user:
                shutil.chown(pwfile, self.user)
            auth = ["-A", "scram-sha-256", "--pwfile", str(pwfile)]
        self._run(_pg_bin("initdb"), "-D", str(self.data), *auth, "-U", "postgres", "--no-sync", "-E", "UTF8")

    @property
    def dsn(self) -> str:
        secret = f":{self.password}" if self.password is not None else ""
        return f"postgresql://postgres{secret}@127.0.0.1:{self.port}/postgres"

    def dsn_for(self, database: str) -> str:
        return self.dsn.rsplit("/", 1)[0] + f"/{database}"

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run SQL as the superuser over the server's socket; its output."""
        cmd = [_pg_bin("psql"), "-h", str(self.root), "-p", str(self.port), "-U", "postgres", "-d", database]
        cmd += ["-v", "ON_ERROR_STOP=1", "-Atqc", sql]
        if self.user:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        env = {**os.environ, "PGPASSWORD": self.password or ""}
        return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=60, env=env).stdout

    def _run(self, *cmd: str) -> None:
        if self.user:
            cmd = ("runuser", "-u", self.user, "--", *cmd)
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        options += "".join(f" -c {setting}" for setting in self.settings)
        self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.root / "log"), "-w", "start")
        wait_for_port(self.port)

    def stop(self) -> None:
        self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def cleanup(self) -> None:
        with contextlib.suppress(Exception):
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def throwaway_postgres(
    password: str | None = None, preload: str | None = None, settings: Sequence[str] = ()
) -> Iterator[ThrowawayPostgres]:
    server = ThrowawayPostgres(password, preload, settings)
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


class ThrowawayRedis:
    def __init__(self, password: str | None = None, *options: str) -> None:
        self.binary = require_binary("redis-server")
        self.port = free_port()
        self.password = password
        self.options = list(options)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        secret = f":{self.password}@" if self.password else ""
        return f"redis://{secret}127.0.0.1:{self.port}/0"

    def start(self) -> None:
        extra = ["--requirepass", self.password] if self.password else []
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                *extra,
                *self.options,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@contextlib.contextmanager
def throwaway_redis(password: str | None = None, *options: str) -> Iterator[ThrowawayRedis]:
    server = ThrowawayRedis(password, *options)
    try:
        server.start()
        yield server
    finally:
        server.stop()


class LocalServer:
    """A server binary on a free loopback port (or ``port``) with a temporary folder,
    ready once its ``/-/ready`` answers 200 (Prometheus and Alertmanager both have one)."""

    def __init__(self, binary: str, prefix: str, port: int | None = None) -> None:
        self.binary = require_binary(binary)
        self.port = port or free_port()
        self.root = Path(tempfile.mkdtemp(prefix=prefix))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def launch(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [self.binary, *args, f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)
        name = Path(self.binary).name
        wait_until(lambda: _http_ok(f"{self.url}/-/ready"), timeout=30, what=f"{name}'s /-/ready")  # 503 while starting

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=20)
            self.process = None
        shutil.rmtree(self.root, ignore_errors=True)


class Prometheus(LocalServer):
    """A real Prometheus on a free loopback port (or ``port``), scraping itself (job
    ``self``) and ``targets`` (job ``job``, default ``target``) every second.

    ``rule_files`` are loaded and evaluated every ``evaluation_interval``; firing
    alerts go to ``alertmanager`` (a base URL) when given.
    """

    def __init__(
        self,
        targets: list[str],
        metrics_path: str = "/metrics",
        *,
        job: str = "target",
        rule_files: Sequence[Path] = (),
        alertmanager: str | None = None,
        evaluation_interval: str = "1s",
        port: int | None = None,
    ) -> None:
        super().__init__("prometheus", "fraiseql-checks-prom-", port)
        self.config = self.root / "prometheus.yml"
        lines = [
            "global:",
            "  scrape_interval: 1s",
            "  scrape_timeout: 1s",
            f"  evaluation_interval: {evaluation_interval}",
        ]
        if rule_files:
            lines += ["rule_files:", *(f"  - {json.dumps(str(path))}" for path in rule_files)]
        if alertmanager:
            address = alertmanager.split("://", 1)[-1].rstrip("/")
            lines += ["alerting:", "  alertmanagers:", "    - static_configs:", f"        - targets: ['{address}']"]
        lines += ["scrape_configs:", "  - job_name: self", "    static_configs:"]
        lines += [f"      - targets: ['127.0.0.1:{self.port}']"]
        if targets:
            lines += [f"  - job_name: {job}", f"    metrics_path: {metrics_path}", "    static_configs:"]
            lines += [f"      - targets: [{', '.join(repr(t) for t in targets)}]"]
        self.config.write_text("\n".join(lines) + "\n", encoding="utf-8")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                self.binary,
                f"--config.file={self.config}",
                f"--storage.tsdb.path={self.root / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)
        wait_until(
            lambda: _http_ok(f"{self.url}/-/ready"), timeout=30, what="Prometheus' /-/ready"
        )  # 503 until its storage is open

    def query(self, expr: str) -> list[dict[str, object]]:
        """The result vector of an instant query (``/api/v1/query``)."""
        url = f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
        with urllib.request.urlopen(url, timeout=5) as response:
            body = json.load(response)
        assert body["status"] == "success", body
        return list(body["data"]["result"])

    def wait_for_series(self, expr: str, timeout: float = 30.0) -> None:
        """Poll until ``expr`` has a sample (the first scrape lands a few seconds after start)."""

        def has_sample() -> bool:
            with contextlib.suppress(OSError, ValueError, AssertionError):
                return bool(self.query(expr))
            return False

        wait_until(has_sample, timeout=timeout, every=0.2, what=expr)


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@contextlib.contextmanager
def prometheus(targets: list[str], metrics_path: str = "/metrics", **options: Any) -> Iterator[Prometheus]:
    """A started ``Prometheus`` (``options``: ``job``, ``rule_files``, ``alertmanager``, ...), stopped after."""
    server = Prometheus(targets, metrics_path, **options)
    try:
        server.start()
        yield server
    finally:
        server.stop()


class Alertmanager(LocalServer):
    """A real Alertmanager (Debian's ``prometheus-alertmanager``) on a free loopback port,
    with ``config`` (its YAML text), clustering off."""

    def __init__(self, config: str) -> None:
        super().__init__("prometheus-alertmanager", "fraiseql-checks-am-")
        self.config = self.root / "alertmanager.yml"
        self.config.write_text(config, encoding="utf-8")

    def start(self) -> None:
        self.launch(f"--config.file={self.config}", f"--storage.path={self.root / 'data'}", "--cluster.listen-address=")

    def post_alerts(self, alerts: list[dict[str, object]]) -> None:
        """Send alerts as Prometheus does (``POST /api/v2/alerts``)."""
        request = urllib.request.Request(
            f"{self.url}/api/v2/alerts",
            data=json.dumps(alerts).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 200

    def alerts(self) -> list[dict[str, object]]:
        """The alerts it holds (``GET /api/v2/alerts``), with their status (``inhibitedBy``...)."""
        with urllib.request.urlopen(f"{self.url}/api/v2/alerts", timeout=5) as response:
            return list(json.load(response))


@contextlib.contextmanager
def alertmanager(config: str) -> Iterator[Alertmanager]:
    server = Alertmanager(config)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@dataclasses.dataclass(frozen=True)
class Delivery:
    """One request a receiver got: when (``time.time()``), on which path, the JSON body
    (``{}`` when it is not JSON), the headers (lower-case names) and the raw body."""

    at: float
    path: str
    body: dict[str, Any]
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    raw: bytes = b""


@dataclasses.dataclass(frozen=True)
class Reply:
    """What a ``WebhookReceiver`` answers: a status, headers and a body."""

    status: int = 200
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    body: bytes = b"ok"


class WebhookReceiver:
    """A local HTTP server that records every POST, for Alertmanager's receivers (webhook,
    and the Slack and PagerDuty ones pointed at it) and our notifiers.

    It answers 200 unless told otherwise: ``replies`` (a list, consumed one per request,
    then the default), or ``default`` (e.g. ``Reply(503)`` while "down"). A request
    answered other than 2xx is still recorded, in ``deliveries``, with its reply."""

    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []
        #: Every request, with the status it got.
        self.answered: list[tuple[Delivery, int]] = []
        self.replies: list[Reply] = []
        self.default = Reply()
        self._lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {}
                headers = {name.lower(): value for name, value in self.headers.items()}
                delivery = Delivery(
                    time.time(), self.path, body if isinstance(body, dict) else {"_": body}, headers, raw
                )
                with receiver._lock:
                    reply = receiver.replies.pop(0) if receiver.replies else receiver.default
                    if 200 <= reply.status < 300:
                        receiver.deliveries.append(delivery)
                    receiver.answered.append((delivery, reply.status))
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def received(self, path: str) -> list[Delivery]:
        """The requests on ``path`` that were answered 2xx."""
        with self._lock:
            return [d for d in self.deliveries if d.path == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextlib.contextmanager
def webhook_receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    receiver.thread.start()
    try:
        yield receiver
    finally:
        receiver.close()


@contextlib.contextmanager
def cpu_load(processes: int | None = None) -> Iterator[None]:
    """Keep every core busy (one spinning process per core) while the block runs."""
    count = processes or os.cpu_count() or 1
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()


def wait_until(condition: object, timeout: float = 30.0, every: float = 0.05, what: str = "") -> object:
    """Poll ``condition()`` until it returns something truthy; that value. ``TimeoutError`` after ``timeout``."""
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"still waiting after {timeout}s for {what or condition}")
        time.sleep(every)


@contextlib.contextmanager
def taking_no_connection() -> Iterator[int]:
    """The port of a listening socket whose backlog is full: it drops new connections'
    SYNs, so a connect to it waits until its timeout."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    filling = []
    try:
        for _ in range(4):  # a backlog of 0 holds one or two: these fill it
            client = socket.socket()
            client.setblocking(False)
            client.connect_ex(("127.0.0.1", port))
            filling.append(client)
        yield port
    finally:
        for client in [*filling, listener]:
            client.close()
