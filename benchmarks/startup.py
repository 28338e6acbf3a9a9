"""How long ``fraiseql-check`` takes to start: ``--version``, ``--help``, imports, and
``--collect-only`` of 10,000 cached checks.

Run: ``.venv/bin/python benchmarks/startup.py [--rounds N]``. Each command is run N
times (default 20, after one warm-up) as a fresh process, as hyperfine would, the
commands taking turns (one round of each, then the next round) so that a change in the
machine's load hits them all alike; prints one table of min / median / mean / max wall
time with the goal of issue 19 where there is one, and the ten slowest imports of
``fraiseql-check --version`` from ``python -X importtime``.

The processes run without ``PYTHONDONTWRITEBYTECODE`` (this machine sets it; under it
no ``.pyc`` is ever written and every start compiles the package again), so the
warm-up leaves the bytecode a user's installation has. The 10,000 checks (100 files of
100 ``assert 1 + 1 == 2``) are generated in a temporary folder; the warm-up fills their
cache of rewritten code. Numbers go to docs/performance.md ("Start-up").
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _stats import conditions, median, spread_cells

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = shutil.which("fraiseql-check", path=str(Path(sys.executable).parent)) or "fraiseql-check"

#: The 10,000 checks' folder, made by ``main`` (loading this file makes nothing).
CHECKS = Path(tempfile.gettempdir()) / f"fraiseql-startup-{os.getpid()}"
#: (title, command, folder it runs in, the goal in ms or None)
COMMANDS: list[tuple[str, list[str], Path, float | None]] = [
    ("python -c pass (the interpreter alone)", [sys.executable, "-c", "pass"], ROOT, None),
    ("fraiseql-check --version", [SCRIPT, "--version"], ROOT, 100),
    ("fraiseql-check -V", [SCRIPT, "-V"], ROOT, 100),
    ("python -c 'import fraiseql_checks'", [sys.executable, "-c", "import fraiseql_checks"], ROOT, None),
    (
        "python -c 'from fraiseql_checks import check'",
        [sys.executable, "-c", "from fraiseql_checks import check"],
        ROOT,
        None,
    ),
    ("fraiseql-check --help (every plugin loaded)", [SCRIPT, "--help"], ROOT, None),
    ("fraiseql-check --collect-only -q, 10,000 cached checks", [SCRIPT, "--collect-only", "-q"], CHECKS, 300),
]
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def write_checks(root: Path, files: int = 100, per_file: int = 100) -> None:
    (root / "checks").mkdir(parents=True, exist_ok=True)
    for i in range(files):
        body = "\n".join(f"def check_{j}():\n    assert 1 + 1 == 2\n" for j in range(per_file))
        (root / "checks" / f"check_m{i}.py").write_text(body)


def once(command: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, capture_output=True, env=ENV, check=True)
    return time.perf_counter() - start


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
    for line in conditions(when_set="in the caller, removed for the measured processes"):
        print(line)
    print(f"{rounds} rounds each, taking turns\n")
    CHECKS.mkdir()
    write_checks(CHECKS)
    for _, command, cwd, _ in COMMANDS:
        once(command, cwd)  # warm-up: bytecode, the cache of rewritten checks
    times: dict[str, list[float]] = {title: [] for title, *_ in COMMANDS}
    for _ in range(rounds):
        for title, command, cwd, _ in COMMANDS:
            times[title].append(once(command, cwd) * 1000)
    print("| command | min | median | mean | max | goal |")
    print("|---|---|---|---|---|---|")
    for title, _, _, goal in COMMANDS:
        ms = times[title]
        low, mid, high = spread_cells(ms, "{:.0f}", " ms")
        verdict = "" if goal is None else f"≤ {goal:.0f} ms: {'met' if median(ms) <= goal else 'not met'} (median)"
        print(f"| {title} | {low} | {mid} | {statistics.fmean(ms):.0f} ms | {high} | {verdict} |")
    shutil.rmtree(CHECKS, ignore_errors=True)
    print("\nslowest imports of `fraiseql-check --version` (python -X importtime, cumulative):\n")
    for micros, name in slowest_imports([SCRIPT, "--version"]):
        print(f"  {micros / 1000:7.1f} ms  {name}")


if __name__ == "__main__":
    main()
