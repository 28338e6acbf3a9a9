"""``fraiseql-check slo`` end to end: 500 check SLOs over 30 days of results every 30 s.

    .venv/bin/python benchmarks/bench_slo.py                         # 500 checks x 30 days (43.2M results)
    .venv/bin/python benchmarks/bench_slo.py --checks 50 --days 3    # a smaller data set
    .venv/bin/python benchmarks/bench_slo.py --quick                 # the same: 50 checks x 3 days

The result store is the data set of ``bench_slo_store.py`` (built once through
``Store.write``, kept under ``.fraiseql-checks/bench/``). A project with one check
file per 100 checks, each ``@check(slo="99.9% / 30d", interval="30s")`` named as
the stored results, is written to a temporary folder; then the real command
``fraiseql-check slo --store <db> --at <end of the data>`` runs as a user runs it
(a new process: start-up, collection, the store, the table) 5 times, and the
median wall time is reported beside its parts measured in-process. The goal is
at most 2 s. Prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.append(str(REPO / "benchmarks"))

from bench_slo_store import BENCH_DIR, HOUR, build, check_ids  # noqa: E402

from fraiseql_checks.stores.sqlite import SQLiteStore  # noqa: E402

GOAL_S = 2.0


def write_project(root: Path, ids: list[str], interval: float) -> None:
    files: dict[str, list[str]] = {}
    for check_id in ids:
        path, name = check_id.split("::")
        files.setdefault(path, []).append(name)
    for path, names in files.items():
        lines = ["from fraiseql_checks import check", ""]
        for name in names:
            lines += ["", f'@check(slo="99.9% / 30d", interval="{interval:g}s")', f"def {name}():", "    pass", ""]
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("\n".join(lines), encoding="utf-8")


def run_command(root: Path, store: Path, at: float) -> tuple[float, str, int]:
    began = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "fraiseql_checks", "slo", "-q", "--store", str(store), "--at", str(at)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return time.perf_counter() - began, done.stdout, done.returncode


def in_process(root: Path, store_path: Path, at: float) -> dict[str, float]:
    """The command's parts: configuration and collection, reading the SLOs, the store, the table."""
    import os

    from fraiseql_checks.cli import configure
    from fraiseql_checks.slo.command import judge, table
    from fraiseql_checks.slo.compute import statuses
    from fraiseql_checks.slo.plugin import load_slos

    cwd = os.getcwd()
    os.chdir(root)
    try:
        began = time.perf_counter()
        config, _ = configure(["slo", "-q", "--store", str(store_path)], invocation_dir=root)
        config.hook.fraiseql_configure(config=config)
        slos = load_slos(config)
        collected = time.perf_counter()

        async def compute() -> list:  # type: ignore[type-arg]
            store = SQLiteStore(store_path)
            await store.open()
            try:
                return await statuses(slos, at, store, None)
            finally:
                await store.close()

        found = asyncio.run(compute())
        computed = time.perf_counter()
        lines = table([judge(status, config.option) for status in found], False)
        rendered = time.perf_counter()
        config.hook.fraiseql_unconfigure(config=config)
    finally:
        os.chdir(cwd)
    assert len(lines) == len(slos) + 2
    return {
        "collect": collected - began,
        "store": computed - collected,
        "table": rendered - computed,
        "slos": len(slos),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checks", type=int, default=500)
    parser.add_argument("--days", type=float, default=30.0)
    parser.add_argument("--interval", type=float, default=30.0)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="a small data set: 50 checks x 3 days")
    args = parser.parse_args()
    if args.quick:
        args.checks, args.days = 50, 3.0

    ids = check_ids(args.checks)
    size = f"{args.checks}x{args.days:g}d-every-{args.interval:g}s"
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    store_path = BENCH_DIR / f"slo-{size}.db"
    meta_path = BENCH_DIR / f"slo-sqlite-{size}.json"
    if not meta_path.exists() or not store_path.exists():
        end = (time.time() // HOUR) * HOUR - 60.0
        print(f"building {size} (once; bench_slo_store.py --rebuild redoes it) ...", file=sys.stderr, flush=True)
        meta = asyncio.run(build(SQLiteStore(store_path), ids, args.days, args.interval, end, 50_000))
        meta_path.write_text(json.dumps(meta | {"end": end}))
    meta = json.loads(meta_path.read_text())
    at = meta["end"] - 57 * 60.0  # two minutes past an hour: the longest raw edges

    with tempfile.TemporaryDirectory(prefix="fraiseql-bench-slo-") as folder:
        root = Path(folder)
        write_project(root, ids, args.interval)
        times, output = [], ""
        for _ in range(args.runs):
            elapsed, output, code = run_command(root, store_path, at)
            if code != 0:
                raise SystemExit(f"fraiseql-check slo exited {code}:\n{output}")
            times.append(elapsed)
        parts = in_process(root, store_path, at)
    rows = [row for row in output.splitlines() if row.startswith("checks-")]
    assert len(rows) == args.checks, f"{len(rows)} rows for {args.checks} SLOs"
    median = statistics.median(times)
    table = [
        (
            "data",
            f"{args.checks} check SLOs, {args.days:g} days of runs every {args.interval:g} s",
            f"{int(meta['rows']):,} results",
        ),
        ("command", f"fraiseql-check slo, a new process, median of {args.runs}", f"{median:.2f} s"),
        ("command", "fastest / slowest", f"{min(times):.2f} s / {max(times):.2f} s"),
        ("part", "start-up, configuration, collecting the checks and their SLOs", f"{parts['collect'] * 1000:.0f} ms"),
        ("part", "SLIs, budgets and burn rates from the store (8 windows)", f"{parts['store'] * 1000:.0f} ms"),
        ("part", "the table", f"{parts['table'] * 1000:.0f} ms"),
        ("goal", f"at most {GOAL_S:g} s", "met" if median <= GOAL_S else "MISSED"),
    ]
    width = max(len(row[1]) for row in table)
    print(f"{'':<8} {'what':<{width}}  result")
    for part, what, value in table:
        print(f"{part:<8} {what:<{width}}  {value}")


if __name__ == "__main__":
    main()
