"""What the target fixtures cost: traced SQL, traceparent on HTTP, PromQL parsing, start-up.

Run: ``.venv/bin/python benchmarks/bench_targets.py`` (needs PostgreSQL on
127.0.0.1:5432, database ``test``). Prints one table; numbers go to docs/performance.md.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import asyncpg
import httpx

from fraiseql_checks import promql
from fraiseql_checks.targets.database import Database
from fraiseql_checks.targets.http import HTTPClient
from fraiseql_checks.trace import RunContext, current_run, new_span_id, new_trace_id

DSN = "postgresql://postgres@127.0.0.1:5432/test"
N = 2000


async def per_call(call: Callable[[], Awaitable[object]], n: int = N) -> float:
    """Median of 5 rounds of ``n`` sequential calls, in microseconds per call."""
    rounds = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(n):
            await call()
        rounds.append((time.perf_counter() - start) / n * 1e6)
    return statistics.median(rounds)


class Quick(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else delayed ACKs add 40 ms to every keep-alive request

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


async def main() -> list[tuple[str, str]]:
    rows = []
    token = current_run.set(RunContext(None, None, new_trace_id(), new_span_id()))
    try:
        pool = await asyncpg.create_pool(DSN, min_size=1, max_size=1)
        raw = await per_call(lambda: pool.fetchval("select 1"))
        await pool.close()
        database = Database(DSN, pool_size=1)
        traced = await per_call(lambda: database.fetchval("select 1"))
        await database.close()
        rows.append(("`db.fetchval('select 1')`, traced, no statement cache", f"{traced:.0f} µs"))
        rows.append(("asyncpg `pool.fetchval('select 1')`, statement cache on", f"{raw:.0f} µs"))

        server = ThreadingHTTPServer(("127.0.0.1", 0), Quick)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        async with httpx.AsyncClient() as plain:
            bare = await per_call(lambda: plain.get(url), 500)
        async with HTTPClient() as ours:
            tagged = await per_call(lambda: ours.get(url), 500)
        server.shutdown()
        rows.append(("`http.get()` with traceparent hook", f"{tagged:.0f} µs"))
        rows.append(("plain `httpx.AsyncClient.get()`", f"{bare:.0f} µs"))
    finally:
        current_run.reset(token)

    exprs = [
        f'histogram_quantile(0.99, sum by (le) (rate(fraiseql_query_duration_seconds_bucket{{job="{i}"}}[5m])))'
        for i in range(54)
    ]
    start = time.perf_counter()
    for _ in range(20):
        for expr in exprs:
            promql.metric_names(expr)
    parse = (time.perf_counter() - start) / 20 * 1000
    rows.append(("`promql.metric_names` over 54 panel queries", f"{parse:.1f} ms"))
    return rows


def startup() -> list[tuple[str, str]]:
    code = (
        "import fraiseql_checks.cli, fraiseql_checks._plugins as p, importlib; "
        "[importlib.import_module(m) for _, m in p.DEFAULT_PLUGINS]"
    )
    heavy = code + (
        "; import fraiseql_checks.targets.database, fraiseql_checks.targets.cache, fraiseql_checks.targets.prometheus"
    )
    out = []
    for label, source in (("start-up: CLI and every built-in plugin", code), ("same, plus the target clients", heavy)):
        times = []
        for _ in range(5):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", source], check=True)
            times.append(time.perf_counter() - start)
        out.append((label, f"{statistics.median(times) * 1000:.0f} ms"))
    return out


if __name__ == "__main__":
    table = asyncio.run(main()) + startup()
    width = max(len(name) for name, _ in table)
    print(f"| {'what':<{width}} | time |")
    print(f"|{'-' * (width + 2)}|------|")
    for name, value in table:
        print(f"| {name:<{width}} | {value} |")
