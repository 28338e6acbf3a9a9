"""Every benchmark in ``benchmarks/``, one after the other, with what the machine was doing.

    .venv/bin/python benchmarks/run.py                 # all of them, full size (an hour or more)
    .venv/bin/python benchmarks/run.py --quick         # each in its short form (minutes)
    .venv/bin/python benchmarks/run.py slo_cold watch  # only these (names without .py or bench_)
    .venv/bin/python benchmarks/run.py --list          # what would run, and how

First the conditions every figure depends on: the load average (the machine is shared:
a busy one makes everything slower), the cores this process may use, the Python, and
whether ``PYTHONDONTWRITEBYTECODE`` is set (then no ``.pyc`` is written: pytest's
rewritten tests and an editable install are compiled again at every start, so "warm"
start-up figures are not warm). Then each benchmark runs as its own process with this
interpreter, its table printed as it comes, followed by its exit status, how long it
took and the load average after it. A benchmark that fails does not stop the others;
the exit status is 1 if any failed.

``--quick``: a benchmark with a ``--quick`` flag of its own gets it; the others get
smaller sizes or fewer parts through their usual arguments (``QUICK`` below), or run
whole when they are short anyway.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

#: The benchmarks, in the order they run (cheap and independent first).
BENCHMARKS = (
    "startup.py",
    "bench_runner.py",
    "bench_targets.py",
    "bench_http.py",
    "transport.py",
    "watch.py",
    "api.py",
    "notify.py",
    "ha.py",
    "alerts.py",
    "audit.py",
    "dashboards.py",
    "bench_slo.py",
    "bench_slo_store.py",
    "bench_slo_cold.py",
)
#: Short forms through a benchmark's usual arguments, for those without ``--quick``.
QUICK: dict[str, list[str]] = {
    "startup.py": ["--rounds", "5"],
    "audit.py": ["--rows", "100000", "--runs", "3"],
    "dashboards.py": ["--runs", "3"],
    "api.py": ["checks", "metrics"],
    "notify.py": ["latency"],
    "ha.py": ["assign", "leases"],
}


def conditions() -> list[str]:
    load = os.getloadavg()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    bytecode = os.environ.get("PYTHONDONTWRITEBYTECODE")
    return [
        f"date: {time.strftime('%Y-%m-%d %H:%M:%S %z')}",
        f"load average (1, 5, 15 min): {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
        f"cores: {os.cpu_count()} ({usable} usable by this process)",
        f"python: {platform.python_version()} ({sys.executable})",
        "PYTHONDONTWRITEBYTECODE: "
        + (f"set ({bytecode!r}): no .pyc is written, start-up is never warm" if bytecode else "not set"),
    ]


def command(script: str, quick: bool) -> list[str] | None:
    """How to run ``script``; ``None`` when it is not there (yet)."""
    path = HERE / script
    if not path.exists():
        return None
    args: list[str] = []
    if quick:
        args = ["--quick"] if '"--quick"' in path.read_text(encoding="utf-8") else QUICK.get(script, [])
    return [sys.executable, str(path), *args]


def short_name(script: str) -> str:
    return script.removesuffix(".py").removeprefix("bench_")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", metavar="NAME", help="only these benchmarks (e.g. slo_cold, watch)")
    parser.add_argument("--quick", action="store_true", help="each benchmark in its short form")
    parser.add_argument("--list", action="store_true", help="print what would run, and how, and stop")
    args = parser.parse_args()

    known = {short_name(script): script for script in BENCHMARKS}
    unknown = [name for name in args.names if name not in known and name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {unknown[0]!r} (one of: {', '.join(known)})")
    wanted = {known.get(name, name) for name in args.names}
    scripts = [script for script in BENCHMARKS if not wanted or script in wanted]

    for line in conditions():
        print(line)
    print(f"mode: {'quick' if args.quick else 'full'}", flush=True)
    failed = []
    summary = []
    for script in scripts:
        cmd = command(script, args.quick)
        shown = f"benchmarks/{script}: not there (yet)" if cmd is None else " ".join([f"benchmarks/{script}", *cmd[2:]])
        if args.list:
            print(f"  {shown}")
            continue
        print(f"\n=== {shown}", flush=True)
        if cmd is None:
            summary.append((script, "not there", ""))
            continue
        began = time.perf_counter()
        code = subprocess.run(cmd, cwd=REPO, check=False).returncode
        elapsed = time.perf_counter() - began
        load = os.getloadavg()[0]
        print(f"=== {script}: exit {code}, {elapsed:.0f} s, load average now {load:.2f}", flush=True)
        summary.append((script, f"exit {code}", f"{elapsed:.0f} s"))
        if code != 0:
            failed.append(script)
    if not args.list:
        print("\n=== summary")
        for line in conditions()[1:2]:
            print(line)
        for script, status, elapsed in summary:
            print(f"  {script:<22} {status:<10} {elapsed}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
