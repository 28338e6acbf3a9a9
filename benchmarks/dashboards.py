"""Benchmark: ``fraiseql-check generate dashboards`` for 1,000 checks, the whole process.

Writes 1,000 checks (10 suites of 100, every tenth with a panel hint and an SLO)
into a temporary project, then times the real command from start to exit:
collecting the checks, building the six seed dashboards and ten suite dashboards,
rendering and writing their JSON. Cold: no rewritten-code cache (every ``assert``
goes through pytest's rewriter); warm: the cache a previous run left. The bar
(issue 8): 1 s for the whole process.

    .venv/bin/python benchmarks/dashboards.py [--checks 1000] [--runs 5]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BAR_S = 1.0
SUITES = 10


def write_project(root: Path, checks: int) -> None:
    (root / "fraiseql-checks.yaml").write_text("paths: [checks]\n")
    per_suite = max(1, checks // SUITES)
    written = 0
    for suite in range(SUITES):
        lines = ["from fraiseql_checks import check, record", ""]
        for index in range(per_suite):
            if written == checks:
                break
            if index % 10 == 0:
                lines.append(
                    f'@check(runbook="docs/runbooks/S{suite}.md", slo="99.9% / 30d", '
                    f'panel={{"value": "v", "unit": "s", "thresholds": [1, 2]}})'
                )
            else:
                lines.append('@check(runbook="docs/runbooks/S.md")')
            lines += [f"def check_{index}():", '    record("v", 1)', "    assert 1 + 1 == 2", ""]
            written += 1
        folder = root / "checks" / f"suite{suite}"
        folder.mkdir(parents=True)
        (folder / f"check_suite{suite}.py").write_text("\n".join(lines))


def run_once(root: Path, cold: bool) -> float:
    if cold:
        shutil.rmtree(root / ".fraiseql-checks", ignore_errors=True)
    shutil.rmtree(root / "dashboards", ignore_errors=True)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "fraiseql_checks", "generate", "dashboards"], cwd=root, capture_output=True, text=True
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_project(root, options.checks)
        rows = []
        for label, cold in (("cold (no rewrite cache)", True), ("warm", False)):
            run_once(root, cold=False)  # imports warm in the OS cache; fills the rewrite cache
            times = [run_once(root, cold) for _ in range(options.runs)]
            rows.append((label, statistics.median(times), min(times), max(times)))
        files = sorted((root / "dashboards").glob("*.json"))
        size = sum(f.stat().st_size for f in files)
    print(f"generate dashboards, {options.checks} checks in {SUITES} suites -> {len(files)} files, {size / 1e6:.1f} MB")
    print(f"{'run':<26}{'median':>10}{'min':>10}{'max':>10}   bar {BAR_S:g} s")
    for label, median, low, high in rows:
        print(f"{label:<26}{median:>9.3f}s{low:>9.3f}s{high:>9.3f}s   {'ok' if median <= BAR_S else 'OVER'}")


if __name__ == "__main__":
    main()
