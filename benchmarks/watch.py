"""Watch-mode benchmarks (issue 4): scheduling, /metrics scrape time, store throughput.

    .venv/bin/python benchmarks/watch.py            # everything (about six minutes)
    .venv/bin/python benchmarks/watch.py scheduler  # or: workers, scrape, store

Each part runs the real thing: ``fraiseql-check --watch`` as a separate process
on generated checks, measured from outside (its /metrics, its CPU and memory via
psutil), and the result stores as the watcher uses them. The PostgreSQL part
needs the server on 127.0.0.1:5432 (database ``test``). Prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path

import psutil
from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from fraiseql_checks.result import Outcome  # noqa: E402
from fraiseql_checks.stores import Store, StoredResult  # noqa: E402
from fraiseql_checks.stores.postgres import PostgresStore  # noqa: E402
from fraiseql_checks.stores.sqlite import SQLiteStore  # noqa: E402
from fraiseql_checks.watch.exposition import Histogram  # noqa: E402

PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"
Row = tuple[str, str, str]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def project(count: int, interval: str) -> Path:
    """A folder with ``count`` trivial checks in files of 100."""
    root = Path(tempfile.mkdtemp(prefix="fraiseql-checks-bench-"))
    (root / "fraiseql-checks.yaml").write_text(f"interval: {interval}\nstart_jitter: {interval}\n")
    checks = root / "checks"
    checks.mkdir()
    for start in range(0, count, 100):
        body = "".join(
            f"def check_trivial_{i}():\n    assert True\n\n\n" for i in range(start, min(start + 100, count))
        )
        (checks / f"check_part_{start // 100:03d}.py").write_text(body)
    return root


class Watcher:
    def __init__(self, root: Path, *args: str) -> None:
        self.address = f"127.0.0.1:{free_port()}"
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "fraiseql_checks", "--watch", "--listen", self.address, "-q", *args],
            cwd=root,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        self.ps = psutil.Process(self.process.pid)

    def get(self, path: str) -> bytes:
        with urllib.request.urlopen(f"http://{self.address}{path}", timeout=30) as response:
            return bytes(response.read())

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.get("/readyz"):
                    return
            except OSError:
                time.sleep(0.1)
        raise TimeoutError("the watcher did not get ready")

    def samples(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        text = self.get("/metrics").decode()
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }

    def cpu(self) -> float:
        """CPU seconds of the watcher process itself."""
        times = self.ps.cpu_times()
        return float(times.user + times.system)

    def workers_cpu(self) -> float:
        """CPU seconds of its worker processes (the ones alive now)."""
        total = 0.0
        for child in self.ps.children():
            try:
                times = child.cpu_times()
            except psutil.Error:
                continue
            total += times.user + times.system
        return total

    def rss(self) -> int:
        return int(self.ps.memory_info().rss)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)


def lateness(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> dict[float, float]:
    prefix = "fraiseql_check_scheduling_lateness_seconds_bucket"
    return {float(labels[0][1]): value for (name, labels), value in samples.items() if name == prefix}


def quantiles(before: dict[float, float], after: dict[float, float]) -> tuple[float, float, int]:
    """p50 and p99 of the lateness observed between two scrapes, interpolated within buckets."""
    bounds = tuple(sorted(b for b in after if b != float("inf")))
    histogram = Histogram(bounds)
    histogram.counts = [int(after[b] - before.get(b, 0.0)) for b in (*bounds, float("inf"))]
    histogram.count = histogram.counts[-1]
    return histogram.quantile(0.5), histogram.quantile(0.99), histogram.count


def bench_scheduler(seconds: float = 60.0, count: int = 2000) -> list[Row]:
    root = project(count, "1s")
    watcher = Watcher(root)
    try:
        watcher.wait_ready()
        time.sleep(5)  # every check has started its one-second rhythm
        first = watcher.samples()
        cpu0, t0 = watcher.cpu(), time.monotonic()
        rss_first = rss_half = 0
        while (elapsed := time.monotonic() - t0) < seconds:
            time.sleep(min(15.0, seconds - elapsed))  # scraped every 15 s, as Prometheus would
            watcher.samples()
            if not rss_first:
                rss_first = watcher.rss()
            if not rss_half and time.monotonic() - t0 >= seconds / 2:
                rss_half = watcher.rss()
        last = watcher.samples()
        elapsed = time.monotonic() - t0
        cpu = (watcher.cpu() - cpu0) / elapsed
        rss_last = watcher.rss()
    finally:
        watcher.stop()
    p50, p99, runs = quantiles(lateness(first), lateness(last))
    overlaps = sum(v for (n, _), v in last.items() if n == "fraiseql_check_skipped_overlapping_runs_total")
    return [
        ("scheduler", f"{count} checks every 1 s for {elapsed:.0f} s: runs", f"{runs} ({runs / elapsed:.0f}/s)"),
        ("scheduler", "scheduling lateness p50 (goal: -)", f"{p50 * 1000:.2f} ms"),
        ("scheduler", "scheduling lateness p99 (goal ≤ 20 ms)", f"{p99 * 1000:.2f} ms"),
        ("scheduler", "watcher CPU (goal ≤ 30% of one core)", f"{cpu * 100:.1f}%"),
        (
            "scheduler",
            "resident memory at 15 s / 30 s / 60 s",
            f"{rss_first >> 20} / {rss_half >> 20} / {rss_last >> 20} MiB",
        ),
        ("scheduler", "memory growth, first 30 s to last 30 s (goal ≤ 5 MB)", f"{(rss_last - rss_half) / 1e6:+.1f} MB"),
        ("scheduler", "skipped overlapping runs", f"{overlaps:.0f}"),
    ]


def bench_workers(seconds: float = 30.0) -> list[Row]:
    """Runs per second per core with one and two worker processes, and what a run costs.

    Each line: trivial checks every second; over ``seconds``, the runs that started,
    their lateness, and the CPU of the watcher and of its workers (all processes,
    read from outside with psutil)."""
    out: list[Row] = []
    for workers, count in ((1, 2000), (2, 2000), (1, 6000), (2, 6000)):
        root = project(count, "1s")
        watcher = Watcher(root, "--workers", str(workers))
        try:
            watcher.wait_ready()
            time.sleep(5)
            first = watcher.samples()
            cpu0, wcpu0, t0 = watcher.cpu(), watcher.workers_cpu(), time.monotonic()
            time.sleep(seconds)
            last = watcher.samples()
            elapsed = time.monotonic() - t0
            cpu, wcpu = watcher.cpu() - cpu0, watcher.workers_cpu() - wcpu0
        finally:
            watcher.stop()
        p50, p99, runs = quantiles(lateness(first), lateness(last))
        skipped = sum(v for (n, _), v in last.items() if n == "fraiseql_check_skipped_overlapping_runs_total") - sum(
            v for (n, _), v in first.items() if n == "fraiseql_check_skipped_overlapping_runs_total"
        )
        rate = runs / elapsed
        total_cpu = cpu + wcpu
        label = f"{count} checks every 1 s, {workers} worker{'s' if workers > 1 else ''}"
        out += [
            ("workers", f"{label}: runs/s (skipped overlapping)", f"{rate:,.0f}/s ({skipped:.0f})"),
            (
                "workers",
                f"{label}: lateness p50 / p99 (goal p99 ≤ 20 ms at 2,000/s)",
                f"{p50 * 1e3:.2f} / {p99 * 1e3:.2f} ms",
            ),
            (
                "workers",
                f"{label}: CPU watcher / workers (share of one core)",
                f"{cpu / elapsed * 100:.0f}% / {wcpu / elapsed * 100:.0f}%",
            ),
            (
                "workers",
                f"{label}: CPU per run, all processes; runs per CPU-second",
                f"{total_cpu / max(runs, 1) * 1e6:.0f} µs; {runs / max(total_cpu, 1e-9):,.0f}",
            ),
        ]
    return out


def scrape_times(interval: str, wait: float, count: int, scrapes: int) -> tuple[float, list[float], list[float], int]:
    """Start a watcher on ``count`` checks running every ``interval``; read /metrics
    ``wait`` seconds apart, and once more right after each read (nothing changed)."""
    root = project(count, interval)
    watcher = Watcher(root)
    try:
        started = time.monotonic()
        watcher.wait_ready()
        ready = time.monotonic() - started
        time.sleep(float(interval.rstrip("s")) + 1)  # every check has run
        gc.collect()
        gc.disable()  # time the watcher, not this process's garbage collector
        after_runs, unchanged, size = [], [], 0
        for _ in range(scrapes):
            time.sleep(wait)
            start = time.perf_counter()
            size = len(watcher.get("/metrics"))
            after_runs.append(time.perf_counter() - start)
            start = time.perf_counter()
            watcher.get("/metrics")
            unchanged.append(time.perf_counter() - start)
        gc.enable()
    finally:
        watcher.stop()
    return ready, after_runs, unchanged, size


def bench_scrape(count: int = 10_000) -> list[Row]:
    ms = lambda seconds: f"{seconds * 1000:.0f} ms"  # noqa: E731
    ready, typical, unchanged, size = scrape_times("60s", 15.0, count, 4)
    _, worst, busy_unchanged, _ = scrape_times("5s", 5.5, count, 8)
    return [
        ("scrape", f"{count} checks: start-up until /readyz", f"{ready:.1f} s"),
        ("scrape", "page size", f"{size / 1e6:.1f} MB"),
        (
            "scrape",
            "every 60 s, scraped every 15 s: GET /metrics median (goal ≤ 100 ms)",
            ms(statistics.median(typical)),
        ),
        ("scrape", "every 60 s: slowest", ms(max(typical))),
        ("scrape", "every 60 s: nothing changed since the last scrape, median", ms(statistics.median(unchanged))),
        ("scrape", "every 5 s (2,000 runs/s), scraped every 5.5 s: median", ms(statistics.median(worst))),
        ("scrape", "every 5 s: slowest", ms(max(worst))),
        ("scrape", "every 5 s: nothing changed since the last scrape, median", ms(statistics.median(busy_unchanged))),
    ]


def rows(count: int, offset: int) -> list[StoredResult]:
    base = time.time() - 3600
    return [
        StoredResult(
            check_id=f"checks/check_part_{i % 20:03d}.py::check_trivial_{i % 2000}",
            started_at=base + (offset + i) * 0.001,
            duration_s=0.0012,
            outcome=Outcome.PASSED if i % 10 else Outcome.FAILED,
            message="" if i % 10 else "assert 1 == 2",
            trace_id=uuid.uuid4().hex,
            values={"latency_seconds": 0.01} if i % 3 == 0 else {},
        )
        for i in range(count)
    ]


def bench_store(name: str, make: Callable[[], Store], total: int = 100_000, batch: int = 5000) -> Row:
    data = [rows(batch, n * batch) for n in range(total // batch)]

    async def main() -> float:
        store = make()
        await store.open()
        try:
            start = time.perf_counter()
            for chunk in data:
                await store.write(chunk, [])
            return time.perf_counter() - start
        finally:
            await store.close()

    elapsed = asyncio.run(main())
    return ("store", f"{name}: {total} results in batches of {batch} (goal ≥ 5,000/s)", f"{total / elapsed:,.0f}/s")


def bench_stores() -> list[Row]:
    import asyncpg

    out = [bench_store("SQLite", lambda: SQLiteStore(Path(tempfile.mkdtemp()) / "results.db"))]
    schema = f"bench_{uuid.uuid4().hex[:8]}"

    async def sql(statement: str) -> None:
        conn = await asyncpg.connect(PG_DSN)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(sql(f"CREATE SCHEMA {schema}"))
    try:
        out.append(bench_store("PostgreSQL", lambda: PostgresStore(f"{PG_DSN}?search_path={schema}")))
    finally:
        asyncio.run(sql(f"DROP SCHEMA {schema} CASCADE"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("parts", nargs="*", metavar="PART", help="scheduler, workers, scrape or store (default: all)")
    parts = parser.parse_args().parts or ["scheduler", "workers", "scrape", "store"]
    unknown = set(parts) - {"scheduler", "workers", "scrape", "store"}
    if unknown:
        parser.error(f"unknown part: {', '.join(sorted(unknown))}")
    table: list[Row] = []
    if "scheduler" in parts:
        table += bench_scheduler()
    if "workers" in parts:
        table += bench_workers()
    if "scrape" in parts:
        table += bench_scrape()
    if "store" in parts:
        table += bench_stores()
    width = max(len(row[1]) for row in table)
    print(f"{'part':<10} {'measure':<{width}} result")
    for part, measure, value in table:
        print(f"{part:<10} {measure:<{width}} {value}")


if __name__ == "__main__":
    main()
