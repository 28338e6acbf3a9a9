"""The benchmarks stay runnable: each one ``benchmarks/run.py`` runs loads.

A benchmark is not run by the test suite (timing is never asserted), so when code it
imports moves, nothing else notices: ``benchmarks/api.py`` imported names that
``benchmarks/watch.py`` no longer had, and ``run.py`` printed its traceback for
sessions. Loading each one (its imports and module-level code, not its ``main``)
in a process of its own catches that.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS_DIR = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS_DIR))
import run  # noqa: E402  (benchmarks/run.py: the list of benchmarks has its home there)

sys.path.remove(str(BENCHMARKS_DIR))

#: As ``python benchmarks/NAME.py`` would start it (its folder first on the path), without
#: running its ``main``.
LOAD = (
    "import os, runpy, sys; sys.argv = [sys.argv[1]]; sys.path.insert(0, os.path.dirname(sys.argv[0]));"
    " runpy.run_path(sys.argv[0], run_name='loaded_by_the_tests')"
)


def test_the_list_names_every_benchmark_script() -> None:
    scripts = {path.name for path in BENCHMARKS_DIR.glob("*.py") if not path.name.startswith("_")}
    assert scripts - {"run.py"} == set(run.BENCHMARKS)


@pytest.mark.parametrize("script", run.BENCHMARKS)
def test_a_benchmark_loads(script: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", LOAD, str(BENCHMARKS_DIR / script)],
        cwd=BENCHMARKS_DIR.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
