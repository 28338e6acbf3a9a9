"""``fraiseql-check slo`` on a cold cache: 500 check SLOs over 30 days, SQLite and PostgreSQL.

    .venv/bin/python benchmarks/bench_slo_cold.py                  # 500 checks x 31 days, a run a minute
    .venv/bin/python benchmarks/bench_slo_cold.py --interval 30    # twice the rows
    .venv/bin/python benchmarks/bench_slo_cold.py --quick          # 100 checks x 31 days, every 5 min
    .venv/bin/python benchmarks/bench_slo_cold.py --only sqlite    # or postgres
    .venv/bin/python benchmarks/bench_slo_cold.py --rebuild        # build the data sets again

The data set: one run of each check every ``--interval`` seconds for ``--days`` days
(~0.1% failed), inserted straight with SQL, in the order a watcher writes them
(tick by tick, every check in each tick), with the stores' rollup triggers firing:
so the files' layout is the one a watcher leaves, without spending an hour in
``Store.write`` (``bench_slo_store.py`` measures that path). Kept under
``.fraiseql-checks/bench/``: a SQLite file, and the data folder of a PostgreSQL
server of its own (started on a free port for the run, stopped after; 128 MB of
shared buffers, the default).

Then the real command ``fraiseql-check slo --store ... --at <end>`` runs as a new
process, ``--runs`` times each: **cold** — the SQLite file dropped from the OS page
cache (``posix_fadvise(DONTNEED)``), or the PostgreSQL server stopped (its shared
buffers gone), every file of its data folder dropped from the page cache, and
started again — and **warm** (right after a run). Each both **with** the daily
rollups and **without** them (the hourly rollups and raw edges only: the path before
daily rollups, chosen with ``stores.sli.DAILY_ROLLUPS``), alternating. "now" is two
minutes past an hour: the windows' raw edges are then the longest. Both paths must
print the same report (checked). Prints a table: median (min-max) per cell.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]

from _stats import conditions, median, min_median_max  # noqa: E402
from bench_slo import write_project  # noqa: E402
from bench_slo_store import BENCH_DIR, check_ids, evict  # noqa: E402

from fraiseql_checks.stores.postgres import PostgresStore  # noqa: E402
from fraiseql_checks.stores.sqlite import SQLiteStore  # noqa: E402

GOAL_S = 2.0
HOUR = 3600.0
DAY = 86400.0
#: Runs the command with the daily rollups on or off (argv[1]), the rest being its arguments.
#: It also prints how long the SLO computation took (the store's part, opening it aside).
WRAPPER = (
    "import sys, time\n"
    "from fraiseql_checks.stores import sli\n"
    "from fraiseql_checks.slo import compute\n"
    "sli.DAILY_ROLLUPS = sys.argv.pop(1) == 'daily'\n"
    "sys.argv[0] = 'fraiseql-check'\n"
    "statuses = compute.statuses\n"
    "async def timed(*args, **kwargs):\n"
    "    began = time.perf_counter()\n"
    "    try:\n"
    "        return await statuses(*args, **kwargs)\n"
    "    finally:\n"
    "        print(f'store_s={time.perf_counter() - began}', file=sys.stderr)\n"
    "compute.statuses = timed\n"
    "from fraiseql_checks.cli import console_main\n"
    "console_main()\n"
)
#: The command's environment: bytecode cached (as an installed package has it), outside
#: the source tree, whatever this machine's ``PYTHONDONTWRITEBYTECODE`` says.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"} | {
    "PYTHONPYCACHEPREFIX": str(BENCH_DIR / "pycache")
}


# -- building the data sets ------------------------------------------------------------------


def _sqlite_build(path: Path, ids: Sequence[str], days: float, interval: float, end: float) -> int:
    async def migrate() -> None:
        store = SQLiteStore(path)
        await store.open()
        await store.close()

    asyncio.run(migrate())
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-262144")
    conn.execute("CREATE TEMP TABLE bench_checks (n INTEGER PRIMARY KEY, id TEXT, offset REAL)")
    conn.executemany(
        "INSERT INTO temp.bench_checks VALUES (?, ?, ?)",
        [(n, check_id, n * interval / len(ids)) for n, check_id in enumerate(ids)],
    )
    start = end - days * DAY
    ticks = int(days * DAY // interval)
    per_chunk = max(1, int(HOUR // interval))
    sql = """
    WITH RECURSIVE t(n) AS (SELECT ?1 UNION ALL SELECT n + 1 FROM t WHERE n + 1 < ?2),
    runs AS (
        SELECT t.n AS tick, c.n AS c, c.id, c.offset, abs(random()) % 1000 AS r
        FROM t CROSS JOIN temp.bench_checks AS c
    )
    INSERT INTO results (check_id, started_at, kind, duration_s, outcome, timed_out, message, trace_id,
        recorded_values, interval_s, silenced)
    SELECT id, ?3 + tick * ?4 + offset, 'check', 0.0012, CASE WHEN r = 0 THEN 'failed' ELSE 'passed' END, 0,
        CASE WHEN r = 0 THEN 'assert 200 == 503' ELSE '' END, lower(hex(randomblob(16))), '{}', ?4, 0
    FROM runs ORDER BY tick, c
    """
    began = time.perf_counter()
    for first in range(0, ticks, per_chunk):
        conn.execute("BEGIN")
        conn.execute(sql, (first, min(first + per_chunk, ticks), start, interval))
        conn.execute("COMMIT")
        if (first // per_chunk) % 48 == 0:
            print(f"  SQLite: {first / ticks:.0%} in {time.perf_counter() - began:.0f} s", file=sys.stderr, flush=True)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return ticks * len(ids)


class KeptPostgres:
    """A PostgreSQL server whose data folder is kept between runs (unlike the tests'
    throwaway one), run as the ``postgres`` user when we are root."""

    def __init__(self, root: Path) -> None:
        from tests.support.services import free_port

        self.root = root
        self.data = root / "data"
        self.port = free_port()
        self.user = "postgres" if os.geteuid() == 0 else None

    def _run(self, *cmd: str) -> None:
        from tests.support.services import _pg_bin

        full = [_pg_bin(cmd[0]), *cmd[1:]]
        if self.user:
            full = ["runuser", "-u", self.user, "--", *full]
        subprocess.run(full, check=True, capture_output=True, timeout=600)

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def init(self) -> None:
        if self.root.exists():
            shutil.rmtree(self.root)
        self.root.mkdir(parents=True)
        if self.user:
            shutil.chown(self.root, self.user)
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")

    def start(self) -> None:
        from tests.support.services import wait_for_port

        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.root / "log"), "-w", "start")
        wait_for_port(self.port)

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def files(self) -> list[Path]:
        return [Path(folder, name) for folder, _, names in os.walk(self.data) for name in names]


async def _pg_build(dsn: str, ids: Sequence[str], days: float, interval: float, end: float) -> int:
    import asyncpg

    store = PostgresStore(dsn, timeout=600.0)
    await store.open()
    await store.close()
    conn = await asyncpg.connect(dsn)
    start = end - days * DAY
    ticks = int(days * DAY // interval)
    per_chunk = max(1, int(HOUR // interval))
    offsets = [n * interval / len(ids) for n in range(len(ids))]
    sql = """
    INSERT INTO fraiseql_check_results (trace_id, check_id, kind, started_at, duration_s, outcome, timed_out,
        message, recorded_values, interval_s, silenced)
    SELECT md5(random()::text), c.id, 'check', to_timestamp($1 + t * $2 + c.off), 0.0012,
        CASE WHEN x.r < 0.001 THEN 'failed' ELSE 'passed' END, false,
        CASE WHEN x.r < 0.001 THEN 'assert 200 == 503' ELSE '' END, '{}'::jsonb, $2, false
    FROM generate_series($3::int, $4::int - 1) AS t
    CROSS JOIN unnest($5::text[], $6::float8[]) WITH ORDINALITY AS c(id, off, n)
    CROSS JOIN LATERAL (SELECT random() + 0 * t AS r) AS x
    ORDER BY t, c.n
    """
    began = time.perf_counter()
    try:
        for first in range(0, ticks, per_chunk):
            await conn.execute(sql, start, interval, first, min(first + per_chunk, ticks), list(ids), offsets)
            if (first // per_chunk) % 48 == 0:
                elapsed = time.perf_counter() - began
                print(f"  PostgreSQL: {first / ticks:.0%} in {elapsed:.0f} s", file=sys.stderr, flush=True)
        await conn.execute("VACUUM ANALYZE")  # what autovacuum does in production
        await conn.execute("CHECKPOINT")
    finally:
        await conn.close()
    return ticks * len(ids)


# -- running the command ---------------------------------------------------------------------


def run_command(root: Path, store: str, at: float, daily: bool, report: Path) -> tuple[float, float]:
    """The command's wall time, and its SLO computation's."""
    began = time.perf_counter()
    done = subprocess.run(
        [
            *(sys.executable, "-c", WRAPPER, "daily" if daily else "hourly"),
            *("slo", "-q", "--store", store, "--at", str(at), "--report-json", str(report)),
        ],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=600,
        env=ENV,
    )
    elapsed = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"fraiseql-check slo exited {done.returncode}:\n{done.stdout}{done.stderr}")
    store_s = [float(line.split("=", 1)[1]) for line in done.stderr.splitlines() if line.startswith("store_s=")]
    return elapsed, store_s[-1]


def numbers(report: Path) -> list[object]:
    """What two runs must agree on: every SLO's numbers (not when the report was made)."""
    document = json.loads(report.read_text())
    return [document["summary"], document["slos"]]


def cell(times: Sequence[tuple[float, float]]) -> str:
    """The command's median (min-max), and the median of its SLO computation."""
    if not times:
        return "-"
    low, mid, high = min_median_max(t for t, _ in times)
    part = median(s for _, s in times)
    return f"{mid:.2f} s ({low:.2f}-{high:.2f}; SLOs {part:.2f} s)"


def measure(
    name: str,
    root: Path,
    store: str,
    at: float,
    runs: int,
    cool: Callable[[], None],
    reports: Path,
) -> dict[tuple[bool, str], list[tuple[float, float]]]:
    """Cold and warm runs of both paths, alternating; the reports must agree."""
    run_command(root, store, at, True, reports / "warm-up.json")  # bytecode and rewritten checks cached
    times: dict[tuple[bool, str], list[tuple[float, float]]] = {
        (d, c): [] for d in (True, False) for c in ("cold", "warm")
    }
    want: list[object] | None = None
    for number in range(runs):
        for daily in (True, False) if number % 2 == 0 else (False, True):
            report = reports / f"{name}-{daily}.json"
            cool()
            times[(daily, "cold")].append(run_command(root, store, at, daily, report))
            times[(daily, "warm")].append(run_command(root, store, at, daily, report))
            got = numbers(report)
            if want is None:
                want = got
            elif got != want:
                raise SystemExit(f"{name}: the report with daily rollups={daily} differs from the first one")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checks", type=int, default=500)
    parser.add_argument("--days", type=float, default=31.0, help="days of data (31: every 30-day window is full)")
    parser.add_argument("--interval", type=float, default=60.0, help="seconds between runs of a check")
    parser.add_argument("--runs", type=int, default=3, help="runs of each kind")
    parser.add_argument("--only", choices=("sqlite", "postgres"))
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--quick", action="store_true", help="100 checks x 31 days, every 5 min; 2 runs")
    args = parser.parse_args()
    if args.quick:
        args.checks, args.interval, args.runs = 100, 300.0, 2

    ids = check_ids(args.checks)
    size = f"{args.checks}x{args.days:g}d-every-{args.interval:g}s"
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    meta_path = BENCH_DIR / f"cold-{size}.json"
    meta: dict[str, float] = json.loads(meta_path.read_text()) if meta_path.exists() and not args.rebuild else {}
    if "end" not in meta:
        meta = {"end": (time.time() // HOUR) * HOUR - 60.0}  # 59 minutes past the last full hour
    at = meta["end"] - 57 * 60.0  # two minutes past an hour
    sqlite_path = BENCH_DIR / f"cold-{size}.db"
    sqlite_files = [sqlite_path, sqlite_path.with_name(sqlite_path.name + "-wal")]

    rows: list[tuple[str, ...]] = []
    with tempfile.TemporaryDirectory(prefix="fraiseql-bench-slo-cold-") as folder:
        root = Path(folder)
        write_project(root, ids, args.interval)
        if args.only in (None, "sqlite"):
            if args.rebuild or "sqlite_rows" not in meta or not sqlite_path.exists():
                for file in [*sqlite_files, sqlite_path.with_name(sqlite_path.name + "-shm")]:
                    file.unlink(missing_ok=True)
                print(f"building {size} in SQLite ...", file=sys.stderr, flush=True)
                began = time.perf_counter()
                meta["sqlite_rows"] = _sqlite_build(sqlite_path, ids, args.days, args.interval, meta["end"])
                meta["sqlite_build_s"] = time.perf_counter() - began
                meta_path.write_text(json.dumps(meta))
            size_gb = sum(f.stat().st_size for f in sqlite_files if f.exists()) / 1e9
            times = measure("sqlite", root, str(sqlite_path), at, args.runs, lambda: evict(sqlite_files), root)
            rows.append(("SQLite", f"{int(meta['sqlite_rows']):,} results, {size_gb:.1f} GB", *_cells(times)))
        if args.only in (None, "postgres"):
            server = KeptPostgres(BENCH_DIR / f"cold-pg-{size}")
            fresh = args.rebuild or "pg_rows" not in meta or not server.data.exists()
            if fresh:
                server.init()
            server.start()
            try:
                if fresh:
                    print(f"building {size} in PostgreSQL ...", file=sys.stderr, flush=True)
                    began = time.perf_counter()
                    meta["pg_rows"] = asyncio.run(_pg_build(server.dsn, ids, args.days, args.interval, meta["end"]))
                    meta["pg_build_s"] = time.perf_counter() - began
                    meta_path.write_text(json.dumps(meta))
                size_gb = sum(f.stat().st_size for f in server.files()) / 1e9

                def cool() -> None:
                    server.stop()
                    evict(server.files())
                    server.start()

                times = measure("postgres", root, server.dsn, at, args.runs, cool, root)
            finally:
                server.stop()
            rows.append(("PostgreSQL", f"{int(meta['pg_rows']):,} results, {size_gb:.1f} GB", *_cells(times)))

    print(f"fraiseql-check slo: {args.checks} check SLOs (30d), {args.days:g} days of a run every {args.interval:g} s;")
    print(f"a new process each time, {args.runs} runs of each kind, median (min-max); goal: cold at most {GOAL_S:g} s;")
    for line in conditions(
        when_set="unset for the command, its bytecode cached (outside the source tree)",
        when_unset="the command's bytecode cached (outside the source tree)",
    ):
        print(line)
    header = ("store", "data", "daily: cold", "daily: warm", "hourly only: cold", "hourly only: warm", "goal")
    table = [header, *rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def _cells(times: dict[tuple[bool, str], list[tuple[float, float]]]) -> tuple[str, ...]:
    met = median(t for t, _ in times[(True, "cold")]) <= GOAL_S
    return (
        cell(times[(True, "cold")]),
        cell(times[(True, "warm")]),
        cell(times[(False, "cold")]),
        cell(times[(False, "warm")]),
        "met" if met else "MISSED",
    )


if __name__ == "__main__":
    main()
