"""API and status page benchmarks (issue 15): GET /api/v1/checks, the status page over 90 days of
history, /metrics plain, gzip and OpenMetrics, and 200 concurrent API clients against scheduling.

    .venv/bin/python benchmarks/api.py            # everything (about four minutes)
    .venv/bin/python benchmarks/api.py checks     # or: metrics, status, load

Each part runs ``fraiseql-check --watch`` as a separate process on generated checks
(benchmarks/watch.py's helpers) and times it from outside over loopback, so the
numbers include HTTP. The status page part fills the SQLite store through the store
API first (one result per check and hour for 90 days; the hourly rollups follow
from the store's trigger). Prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import statistics
import sys
import time
import urllib.request
import uuid
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from _stats import lateness_between  # noqa: E402
from watch import PLAIN_ACCEPT, Watcher, counts, project  # noqa: E402

from fraiseql_checks.result import Outcome  # noqa: E402
from fraiseql_checks.stores import StoredResult  # noqa: E402
from fraiseql_checks.stores.sqlite import SQLiteStore  # noqa: E402

TOKEN = "bench-read-token"
PROMETHEUS_ACCEPT = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
#: One line of the table: part, measure, result.
Row = tuple[str, str, str]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def start(root: Path) -> Watcher:
    import os

    os.environ["FRAISEQL_CHECKS_API_READ_TOKEN"] = TOKEN
    watcher = Watcher(root)
    watcher.wait_ready()
    return watcher


def timed(watcher: Watcher, path: str, times: int = 7, **headers: str) -> tuple[float, int]:
    """Median seconds of ``times`` GETs of ``path`` (after one to warm up), and the body's size."""
    request = urllib.request.Request(
        f"http://{watcher.address}{path}", headers={"Authorization": f"Bearer {TOKEN}", **headers}
    )
    took, size = [], 0
    for _ in range(times + 1):
        begin = time.perf_counter()
        with urllib.request.urlopen(request, timeout=60) as answer:
            size = len(answer.read())
        took.append(time.perf_counter() - begin)
    return statistics.median(took[1:]), size


def bench_checks(count: int = 10_000) -> list[Row]:
    watcher = start(project(count, 60.0))
    try:
        time.sleep(3)
        page, size = timed(watcher, "/api/v1/checks")
        big, big_size = timed(watcher, "/api/v1/checks?limit=1000")
        last, _ = timed(watcher, f"/api/v1/checks?limit=1000&offset={count - 1000}")
        failing, _ = timed(watcher, "/api/v1/checks?state=failing")
        one, _ = timed(watcher, "/api/v1/checks/checks%2Fcheck_part_050.py%3A%3Acheck_trivial_5000")
    finally:
        watcher.stop()
    return [
        (
            "checks",
            f"{count} checks: GET /api/v1/checks, first page of 100 (goal ≤ 100 ms)",
            f"{ms(page)} ({size / 1e3:.0f} kB)",
        ),
        ("checks", f"{count} checks: ?limit=1000", f"{ms(big)} ({big_size / 1e3:.0f} kB)"),
        ("checks", f"{count} checks: ?limit=1000, the last page", ms(last)),
        ("checks", f"{count} checks: ?state=failing (none)", ms(failing)),
        ("checks", f"{count} checks: GET /api/v1/checks/{{check}}", ms(one)),
    ]


def bench_metrics(count: int = 10_000) -> list[Row]:
    watcher = start(project(count, 60.0))
    try:
        time.sleep(61)  # every check has run: the whole page
        plain, plain_size = timed(watcher, "/metrics", 5)
        zipped, zipped_size = timed(watcher, "/metrics", 5, **{"Accept-Encoding": "gzip"})
        om, om_size = timed(watcher, "/metrics", 5, **{"Accept": PROMETHEUS_ACCEPT})
        omz, _ = timed(watcher, "/metrics", 5, **{"Accept": PROMETHEUS_ACCEPT, "Accept-Encoding": "gzip"})
        body = watcher.get("/metrics")
    finally:
        watcher.stop()
    rows: list[Row] = [
        ("metrics", f"{count} checks: plain text 0.0.4 (goal ≤ 100 ms)", f"{ms(plain)} ({plain_size / 1e6:.1f} MB)"),
        ("metrics", f"{count} checks: gzip (level 1, in a thread)", f"{ms(zipped)} ({zipped_size / 1e6:.2f} MB)"),
        ("metrics", f"{count} checks: OpenMetrics 1.0", f"{ms(om)} ({om_size / 1e6:.1f} MB)"),
        ("metrics", f"{count} checks: OpenMetrics + gzip (what Prometheus asks for)", ms(omz)),
    ]
    for level in (1, 6):
        begin = time.perf_counter()
        out = zlib.compressobj(level, zlib.DEFLATED, 31)
        size = len(out.compress(body)) + len(out.flush())
        took = time.perf_counter() - begin
        rows.append(
            (
                "metrics",
                f"zlib level {level} on the {len(body) / 1e6:.1f} MB page, one core",
                f"{ms(took)} ({size / 1e6:.2f} MB)",
            )
        )
    assert gzip.decompress(gzip.compress(body[:1000])) == body[:1000]
    return rows


async def fill(path: Path, count: int, days: int) -> tuple[int, float]:
    """One result per check and hour for ``days`` days; every 40th check fails 8 hours in 30 days."""
    store = SQLiteStore(path)
    await store.open()
    now = time.time()
    first = now - days * 86400
    written = 0
    begin = time.perf_counter()
    try:
        for hour in range(days * 24):
            at = first + hour * 3600
            rows = [
                StoredResult(
                    check_id=f"checks/check_part_{i // 100:03d}.py::check_trivial_{i}",
                    started_at=at + (i % 3600) * 0.01,
                    duration_s=0.002 + (i % 7) * 0.001,
                    outcome=Outcome.FAILED if i % 40 == 0 and hour % 90 == 0 else Outcome.PASSED,
                    message="assert 1 == 2" if i % 40 == 0 and hour % 90 == 0 else "",
                    trace_id=uuid.uuid4().hex,
                    interval_s=3600.0,
                )
                for i in range(count)
            ]
            await store.write(rows, [])
            written += len(rows)
    finally:
        await store.close()
    return written, time.perf_counter() - begin


def bench_status(count: int = 1000, days: int = 90) -> list[Row]:
    root = project(count, 60.0)
    written, took = asyncio.run(fill(root / ".fraiseql-checks" / "results.db", count, days))
    watcher = start(root)
    try:
        time.sleep(3)
        page, size = timed(watcher, "/", 5)
        detail, _ = timed(watcher, "/checks/checks%2Fcheck_part_000.py%3A%3Acheck_trivial_0", 5)
    finally:
        watcher.stop()
    return [
        ("status", f"store: {written:,} results over {days} days written", f"{took:.0f} s"),
        (
            "status",
            f"{count} checks, {days} days of history: GET / (goal ≤ 200 ms)",
            f"{ms(page)} ({size / 1e6:.1f} MB)",
        ),
        ("status", f"{count} checks: GET /checks/{{check}}", ms(detail)),
    ]


async def clients(address: str, count: int, seconds: float) -> int:
    import httpx

    done = 0
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
    async with httpx.AsyncClient(base_url=f"http://{address}", limits=limits, timeout=30) as client:

        async def one() -> None:
            nonlocal done
            while time.monotonic() < deadline:
                answer = await client.get("/api/v1/checks", headers={"Authorization": f"Bearer {TOKEN}"})
                answer.raise_for_status()
                done += 1

        await asyncio.gather(*(one() for _ in range(count)))
    return done


def bench_load(checks: int = 1000, seconds: float = 20.0, count: int = 200) -> list[Row]:
    watcher = start(project(checks, 1.0))
    try:
        time.sleep(5)
        before = counts(watcher.get("/metrics", PLAIN_ACCEPT)).lateness
        time.sleep(seconds)
        middle = counts(watcher.get("/metrics", PLAIN_ACCEPT)).lateness
        requests = asyncio.run(clients(watcher.address, count, seconds))
        after = counts(watcher.get("/metrics", PLAIN_ACCEPT)).lateness
    finally:
        watcher.stop()
    q50, q99, _ = lateness_between(before, middle)
    l50, l99, _ = lateness_between(middle, after)
    return [
        (
            "load",
            f"{checks} checks every 1 s, no API clients: lateness p50 / p99",
            f"{q50 * 1e3:.2f} / {q99 * 1e3:.2f} ms",
        ),
        (
            "load",
            f"the same with {count} concurrent clients on GET /api/v1/checks: p50 / p99 (goal: p99 moves ≤ 20 ms)",
            f"{l50 * 1e3:.2f} / {l99 * 1e3:.2f} ms",
        ),
        ("load", f"{count} clients: requests answered", f"{requests / seconds:,.0f}/s"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("parts", nargs="*", metavar="PART", help="checks, metrics, status or load (default: all)")
    parts = parser.parse_args().parts or ["checks", "metrics", "status", "load"]
    unknown = set(parts) - {"checks", "metrics", "status", "load"}
    if unknown:
        parser.error(f"unknown part: {', '.join(sorted(unknown))}")
    table: list[Row] = []
    for name, bench in (
        ("checks", bench_checks),
        ("metrics", bench_metrics),
        ("status", bench_status),
        ("load", bench_load),
    ):
        if name in parts:
            table += bench()
    width = max(len(row[1]) for row in table)
    print(f"{'part':<8} {'measure':<{width}} result")
    for part, measure, result in table:
        print(f"{part:<8} {measure:<{width}} {result}")


if __name__ == "__main__":
    main()
