"""How long ``fraiseql-check`` takes to start: ``--version``, ``--help`` and imports.

Run: ``.venv/bin/python benchmarks/startup.py [--rounds N]``. Each command is run N
times (default 20, after one warm-up) as a fresh process, as hyperfine would; prints
one table of min / median / mean / max wall time, and the ten slowest imports of
``fraiseql-check --version`` from ``python -X importtime``. Numbers go to
docs/performance.md ("Start-up").
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = shutil.which("fraiseql-check", path=str(Path(sys.executable).parent)) or "fraiseql-check"

COMMANDS: list[tuple[str, list[str]]] = [
    ("python -c pass (the interpreter alone)", [sys.executable, "-c", "pass"]),
    ("fraiseql-check --version", [SCRIPT, "--version"]),
    ("fraiseql-check -V", [SCRIPT, "-V"]),
    ("python -c 'import fraiseql_checks'", [sys.executable, "-c", "import fraiseql_checks"]),
    ("python -c 'from fraiseql_checks import check'", [sys.executable, "-c", "from fraiseql_checks import check"]),
    ("fraiseql-check --help (every plugin loaded)", [SCRIPT, "--help"]),
]


def timed(command: list[str], rounds: int) -> list[float]:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    subprocess.run(command, cwd=ROOT, capture_output=True, env=env, check=True)  # warm-up: the bytecode cache
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        subprocess.run(command, cwd=ROOT, capture_output=True, env=env, check=True)
        times.append(time.perf_counter() - start)
    return times


def slowest_imports(command: list[str], count: int = 10) -> list[tuple[int, str]]:
    """(cumulative µs, module) of the slowest imports, from ``python -X importtime``."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "fraiseql_checks", *command[1:]],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    found = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _self, cumulative, name = line.removeprefix("import time:").split("|")
        found.append((int(cumulative.strip()), name.rstrip()))
    return sorted(found, reverse=True)[:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    rounds = parser.parse_args().rounds
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = float("nan")
    print(f"{rounds} rounds each, load average {load:.1f}, {os.cpu_count()} cores\n")
    print("| command | min | median | mean | max |")
    print("|---|---|---|---|---|")
    for title, command in COMMANDS:
        times = [t * 1000 for t in timed(command, rounds)]
        print(
            f"| {title} | {min(times):.0f} ms | {statistics.median(times):.0f} ms"
            f" | {statistics.fmean(times):.0f} ms | {max(times):.0f} ms |"
        )
    print("\nslowest imports of `fraiseql-check --version` (python -X importtime, cumulative):\n")
    for micros, name in slowest_imports([SCRIPT, "--version"]):
        print(f"  {micros / 1000:7.1f} ms  {name}")


if __name__ == "__main__":
    main()
