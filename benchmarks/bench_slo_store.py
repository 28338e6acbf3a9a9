"""SLO store benchmark: ``Store.sli_totals`` over 30 days of results, with hourly rollups.

    .venv/bin/python benchmarks/bench_slo_store.py                        # 500 checks x 30 days, every 30 s
    .venv/bin/python benchmarks/bench_slo_store.py --checks 50 --days 3   # a smaller data set (or --quick)
    .venv/bin/python benchmarks/bench_slo_store.py --postgres --days 3    # PostgreSQL (127.0.0.1:5432, db test)
    .venv/bin/python benchmarks/bench_slo_store.py --rebuild              # build the data set again

The data set (one run of each check every ``--interval`` seconds, ~0.1% failures)
is built once through ``Store.write`` in large batches, so the rollup trigger costs
what it costs in production, and kept: SQLite files under ``.fraiseql-checks/bench/``,
PostgreSQL in a schema of the ``test`` database (vacuumed and analyzed, as autovacuum
would have, before timing). Then ``sli_totals`` for every check
and the eight windows of ``fraiseql-check slo`` (5m, 30m, 1h, 2h, 6h, 1d, 3d, 30d,
all ending now) is timed: the first call of a new store (for SQLite with the file
dropped from the OS cache first), then the median of 5. "now" is two minutes past
an hour (the windows' raw edges are then longest: 5.8 hours of raw results) and 58
minutes past. One check's totals are compared with the sum of its raw results.
Prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from fraiseql_checks.result import Outcome  # noqa: E402
from fraiseql_checks.stores import SLITotals, Store, StoredResult  # noqa: E402
from fraiseql_checks.stores.postgres import PostgresStore  # noqa: E402
from fraiseql_checks.stores.sli import HOUR, plan_windows  # noqa: E402
from fraiseql_checks.stores.sqlite import SQLiteStore  # noqa: E402
from fraiseql_checks.trace import new_trace_id  # noqa: E402

PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"
BENCH_DIR = REPO / ".fraiseql-checks" / "bench"
DAY = 86400.0
WINDOWS = {"5m": 300, "30m": 1800, "1h": 3600, "2h": 7200, "6h": 6 * 3600, "1d": DAY, "3d": 3 * DAY, "30d": 30 * DAY}
#: The data set ends 59 minutes past an hour; "now" is 2 and 58 minutes past it.
NOWS = {"hh:02": -57 * 60.0, "hh:58": -60.0}


def check_ids(count: int) -> list[str]:
    return [f"checks/check_part_{i // 100:03d}.py::check_trivial_{i}" for i in range(count)]


def windows_at(now: float) -> list[tuple[float, float]]:
    return [(now - length, now) for length in WINDOWS.values()]


async def build(
    store: Store, ids: Sequence[str], days: float, interval: float, end: float, batch: int
) -> dict[str, float]:
    """Write ``days`` of runs of every check through ``store.write``; how long it took."""
    rng = random.Random(1)
    start = end - days * DAY
    offsets = [i * interval / len(ids) for i in range(len(ids))]
    ticks = int(days * DAY // interval)
    rows: list[StoredResult] = []
    written = 0
    report = ticks * len(ids) // 10
    in_write = 0.0
    began = time.perf_counter()
    await store.open()
    try:
        for tick in range(ticks):
            base = start + tick * interval
            for check_id, offset in zip(ids, offsets, strict=True):
                failed = rng.random() < 0.001
                rows.append(
                    StoredResult(
                        check_id=check_id,
                        started_at=base + offset,
                        duration_s=0.0012,
                        outcome=Outcome.FAILED if failed else Outcome.PASSED,
                        message="assert 200 == 503" if failed else "",
                        trace_id=new_trace_id(),
                        interval_s=interval,
                    )
                )
            if len(rows) >= batch or tick == ticks - 1:
                before = time.perf_counter()
                await store.write(rows, [])
                in_write += time.perf_counter() - before
                written += len(rows)
                rows = []
                if written >= report:
                    report += ticks * len(ids) // 10
                    elapsed = time.perf_counter() - began
                    print(f"  {written:,} rows written in {elapsed:.0f} s", file=sys.stderr, flush=True)
    finally:
        await store.close()
    return {"rows": written, "build_s": time.perf_counter() - began, "write_s": in_write}


def evict(paths: Sequence[Path]) -> None:
    """Drop the files from the OS page cache, for a cold first query."""
    for path in paths:
        if path.exists() and hasattr(os, "posix_fadvise"):
            fd = os.open(path, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


async def time_totals(
    make: Callable[[], Store], ids: Sequence[str], now: float, runs: int = 5
) -> tuple[float, float, dict[str, list[SLITotals]]]:
    """The first call of a new store (opening included), and the median of ``runs`` more."""
    windows = windows_at(now)
    store = make()
    try:
        began = time.perf_counter()
        await store.open()
        totals = await store.sli_totals(ids, windows)
        cold = time.perf_counter() - began
        warm = []
        for _ in range(runs):
            began = time.perf_counter()
            await store.sli_totals(ids, windows)
            warm.append(time.perf_counter() - began)
    finally:
        await store.close()
    return cold, statistics.median(warm), totals


async def verify(make: Callable[[], Store], check_id: str, now: float, totals: Sequence[SLITotals]) -> str:
    """Compare one check's totals with the sum of its raw results."""
    store = make()
    await store.open()
    try:
        for (since, until), got in zip(windows_at(now), totals, strict=True):
            runs = [r for r in await store.results(check_id, since, until) if r.kind == "check" and not r.silenced]
            good = [r for r in runs if r.outcome is Outcome.PASSED]
            bad = [r for r in runs if r.outcome in (Outcome.FAILED, Outcome.ERROR)]
            want = (sum(r.interval_s for r in good), sum(r.interval_s for r in bad), len(good), len(bad))
            if (got.good_runs, got.bad_runs) != want[2:] or abs(got.good_s - want[0]) > 1e-6 * max(want[0], 1):
                return f"MISMATCH in [{since}, {until}): {got} != {want}"
    finally:
        await store.close()
    return "equal"


def sqlite_files(path: Path) -> list[Path]:
    return [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]


def file_size(paths: Sequence[Path]) -> str:
    return f"{sum(p.stat().st_size for p in paths if p.exists()) / 1e9:.2f} GB"


async def pg_schema(name: str, drop: bool) -> bool:
    """Create the schema if needed (``drop``: again); whether it is new."""
    import asyncpg

    conn = await asyncpg.connect(PG_DSN)
    try:
        if drop:
            await conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
        exists = await conn.fetchval("SELECT count(*) FROM pg_namespace WHERE nspname = $1", name)
        if not exists:
            await conn.execute(f"CREATE SCHEMA {name}")
        return not exists
    finally:
        await conn.close()


async def pg_vacuum(name: str) -> None:
    """What autovacuum does in production (it is off on test servers): the planner's
    statistics, and the rollups' old row versions (each write updates some) cleared."""
    import asyncpg

    conn = await asyncpg.connect(PG_DSN, server_settings={"search_path": name})
    try:
        await conn.execute("VACUUM ANALYZE fraiseql_check_results")
        await conn.execute("VACUUM ANALYZE fraiseql_check_slo_rollups")
    finally:
        await conn.close()


async def pg_size(name: str) -> str:
    import asyncpg

    conn = await asyncpg.connect(PG_DSN)
    try:
        size = await conn.fetchval(
            "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = $1 AND c.relkind = 'r'",
            name,
        )
    finally:
        await conn.close()
    return f"{int(size or 0) / 1e9:.2f} GB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checks", type=int, default=500)
    parser.add_argument("--days", type=float, default=30.0)
    parser.add_argument("--interval", type=float, default=30.0, help="seconds between runs of a check")
    parser.add_argument("--batch", type=int, default=50_000, help="results per Store.write")
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL instead of SQLite")
    parser.add_argument("--rebuild", action="store_true", help="build the data set again")
    parser.add_argument("--quick", action="store_true", help="a small data set: 50 checks x 3 days")
    args = parser.parse_args()
    if args.quick:
        args.checks, args.days = 50, 3.0

    ids = check_ids(args.checks)
    size = f"{args.checks}x{args.days:g}d-every-{args.interval:g}s"
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    meta_path = BENCH_DIR / f"slo-{'postgres' if args.postgres else 'sqlite'}-{size}.json"
    if args.postgres:
        schema = "fraiseql_bench_slo_" + size.replace("-", "_").replace(".", "_")
        fresh = asyncio.run(pg_schema(schema, drop=args.rebuild or not meta_path.exists()))
        dsn = f"{PG_DSN}?search_path={schema}"

        def make() -> Store:
            return PostgresStore(dsn, timeout=600.0)

        name = f"PostgreSQL (schema {schema})"
    else:
        path = BENCH_DIR / f"slo-{size}.db"
        fresh = args.rebuild or not meta_path.exists()
        if fresh:
            for file in sqlite_files(path):
                file.unlink(missing_ok=True)

        def make() -> Store:
            return SQLiteStore(path)

        name = f"SQLite ({path.relative_to(REPO)})"

    if fresh:
        end = (time.time() // HOUR) * HOUR - 60.0  # 59 minutes past the last full hour
        print(f"building {size} in {name} ...", file=sys.stderr, flush=True)
        meta = asyncio.run(build(make(), ids, args.days, args.interval, end, args.batch)) | {"end": end}
        meta_path.write_text(json.dumps(meta))
    if args.postgres:  # every time: quick when nothing changed
        asyncio.run(pg_vacuum(schema))
    meta = json.loads(meta_path.read_text())

    per_write = meta["rows"] / meta["write_s"]
    size_now = asyncio.run(pg_size(schema)) if args.postgres else file_size(sqlite_files(path))
    print(f"{name}: {args.checks} checks x {args.days:g} days, a run every {args.interval:g} s")
    print(f"  {int(meta['rows']):,} results, {size_now}")
    print(
        f"  built {'now' if fresh else 'before (--rebuild to redo)'} in {meta['build_s']:.0f} s through Store.write"
        f" in batches of {args.batch:,}: {meta['write_s']:.0f} s in write, {per_write:,.0f} results/s"
    )
    cold_label = "first call, file not cached" if not args.postgres else "first call, new pool"
    print(f"\nsli_totals({len(ids)} checks, 8 windows: {' '.join(WINDOWS)}, all ending now)")
    header = ("now", "raw edges", cold_label, "median of 5", "one check vs its raw results")
    rows = [header]
    for label, offset in NOWS.items():
        now = meta["end"] + offset
        if not args.postgres:
            evict(sqlite_files(path))
        cold, warm, totals = asyncio.run(time_totals(make, ids, now))
        check = asyncio.run(verify(make, ids[-1], now, totals[ids[-1]]))
        edges = sum(until - since for since, until in plan_windows(windows_at(now)).raw) / HOUR
        rows.append((label, f"{edges:.1f} h", f"{cold * 1000:.0f} ms", f"{warm * 1000:.0f} ms", check))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


if __name__ == "__main__":
    main()
